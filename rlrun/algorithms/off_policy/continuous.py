"""What the Box-action actor-critics (SAC, TD3) share: actions in env units outside the networks and in
[-1, 1] inside them, and the critics Q(s, a) that read those.

Env runners and the replay buffer see env units; the networks see [-1, 1], which keeps their inputs the same
size on every env. A distribution class made by `BoxBounds.bounded` carries the env's bounds and maps
between the two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from rlrun.core.rl_module.catalog import Catalog

if TYPE_CHECKING:
    from rlrun.algorithms.off_policy.off_policy import OffPolicyConfig

# forward_train's Q-values of the replayed actions, each [batch]: the first critic's, and the twin's.
QF_PREDS = "qf_preds"
QF_TWIN_PREDS = "qf_twin_preds"


class BoxBounds:
    """A mixin for distributions over a Box action space: `bounded(low, high)` makes the subclass that carries
    the bounds (the base class acts in [-1, 1])."""

    scale: ClassVar[torch.Tensor] = torch.ones(1)
    bias: ClassVar[torch.Tensor] = torch.zeros(1)

    @classmethod
    def bounded(cls, low: np.ndarray, high: np.ndarray) -> type:
        """The class for a Box action space `[low, high]`."""
        low_t, high_t = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        return type(cls.__name__, (cls,), {"scale": (high_t - low_t) / 2, "bias": (high_t + low_t) / 2})

    @classmethod
    def to_env(cls, unit: torch.Tensor) -> torch.Tensor:
        """[-1, 1] actions -> env units."""
        return cls.bias.to(unit.device) + cls.scale.to(unit.device) * unit

    @classmethod
    def to_unit(cls, actions: torch.Tensor) -> torch.Tensor:
        """Env-unit actions (as stored) -> [-1, 1], the networks' view."""
        return (actions - cls.bias.to(actions.device)) / cls.scale.to(actions.device)


class Critics(nn.Module):
    """Q networks from `(observation, action in [-1, 1])` to a Q-value: two independent ones (`q1`, `q2`,
    clipped double Q-learning) or `q1` alone (`twin=False`, DDPG's). The action joins the encoder's
    features (for vectors, the observation itself)."""

    def __init__(self, catalog: Catalog, act_dim: int, twin: bool = True) -> None:
        super().__init__()
        self.q1 = catalog.build_network(1, 1.0, extra_inputs=act_dim)
        self.q2 = catalog.build_network(1, 1.0, extra_inputs=act_dim) if twin else None

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each critic's Q-values, `[batch]` each."""
        return tuple(q(obs, actions).squeeze(-1) for q in (self.q1, self.q2) if q is not None)

    def min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The smaller of the critics' Q-values per row (the only one's without a twin)."""
        values = self(obs, actions)
        return torch.min(*values) if len(values) == 2 else values[0]


def actor_critic_optimizers(module: nn.Module, config: OffPolicyConfig) -> dict[str, torch.optim.Optimizer]:
    """An Adam each for the actor (`module.pi`) and the critics (`module.qf`), at `actor_lr` and `critic_lr`
    (`config.lr_of`: null = `lr`)."""
    return {
        "actor": torch.optim.Adam(module.pi.parameters(), lr=config.lr_of("actor_lr"), fused=True),
        "critic": torch.optim.Adam(module.qf.parameters(), lr=config.lr_of("critic_lr"), fused=True),
    }


@contextlib.contextmanager
def frozen(network: nn.Module) -> Iterator[None]:
    """Inside, `network`'s weights record no gradient (its inputs still do): an actor's loss improves the actor
    against the critics as they are. They train again after."""
    network.requires_grad_(False)
    try:
        yield
    finally:
        network.requires_grad_(True)

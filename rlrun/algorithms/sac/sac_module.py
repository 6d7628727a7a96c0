"""The SAC RLModule: a tanh-squashed Gaussian policy, twin Q networks, their targets and the entropy weight.

The policy outputs `[mean, log_std]` of a Gaussian over `u`; the action is
`tanh(u)` in [-1, 1], which the distribution scales to the env's bounds, so
the env runners and the replay buffer see env units. The Q networks take
actions in [-1, 1] (`normalize_actions` maps stored ones back), which keeps
their inputs the same size on every env. `log_alpha` lives in the module so
that checkpoints and DDP's gradient average hold it like any weight.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module import Distribution, RLModule
from rlrun.core.rl_module.catalog import Catalog
from rlrun.core.rl_module.rl_module import TensorDict

# forward_train's twin Q-values of the replayed actions, each [batch].
QF_PREDS = "qf_preds"
QF_TWIN_PREDS = "qf_twin_preds"
# The policy's log std is clipped to this range (as in SB3 / CleanRL): a std near 0 or huge breaks the log-prob.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_LOG_2PI = math.log(2.0 * math.pi)
# Squashed actions are kept this far inside (-1, 1) before atanh, so a stored bound action has a finite log-prob.
_ATANH_EPS = 1e-6


def squash_log_det(u: torch.Tensor) -> torch.Tensor:
    """`log(1 - tanh(u)^2)` summed over action dims, in the stable form `2 (log 2 - u - softplus(-2u))`."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


class TanhGaussian(Distribution):
    """`a = bias + scale * tanh(u)`, `u ~ N(mean, std)`; inputs are `[mean, log_std]`.

    `logp` is the exact density of env-unit actions (change of variables
    through tanh and the affine scale). Subclasses made by `bounded` carry
    the env's bounds; the base class acts in [-1, 1].
    """

    scale: ClassVar[torch.Tensor] = torch.ones(1)
    bias: ClassVar[torch.Tensor] = torch.zeros(1)

    @classmethod
    def bounded(cls, low: np.ndarray, high: np.ndarray) -> type[TanhGaussian]:
        """The distribution class for a Box action space `[low, high]`."""
        low_t, high_t = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        return type(cls.__name__, (cls,), {"scale": (high_t - low_t) / 2, "bias": (high_t + low_t) / 2})

    def __init__(self, inputs: torch.Tensor) -> None:
        self.mean, self.log_std = torch.chunk(inputs, 2, dim=-1)

    def rsample(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised `(tanh(u), log-prob of tanh(u))` for standard normal `noise`: the loss's view, in [-1, 1]."""
        u = self.mean + self.log_std.exp() * noise
        gaussian_logp = (-0.5 * noise.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)
        return torch.tanh(u), gaussian_logp - squash_log_det(u)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        squashed, _ = self.rsample(torch.randn(self.mean.shape, generator=generator))
        return self.bias + self.scale * squashed

    def deterministic_sample(self) -> torch.Tensor:
        return self.bias + self.scale * torch.tanh(self.mean)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        squashed = ((actions - self.bias) / self.scale).clamp(-1 + _ATANH_EPS, 1 - _ATANH_EPS)
        u = torch.atanh(squashed)
        z = (u - self.mean) / self.log_std.exp()
        gaussian_logp = (-0.5 * z.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)
        return gaussian_logp - squash_log_det(u) - torch.log(self.scale).sum()


class TwinQ(nn.Module):
    """Two independent networks from `(observation, action in [-1, 1])` to a Q-value; the action joins the
    encoder's features (for vectors, the observation itself)."""

    def __init__(self, catalog: Catalog, act_dim: int) -> None:
        super().__init__()
        self.q1 = catalog.build_network(1, 1.0, extra_inputs=act_dim)
        self.q2 = catalog.build_network(1, 1.0, extra_inputs=act_dim)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs, actions).squeeze(-1), self.q2(obs, actions).squeeze(-1)


class SACModule(RLModule):
    """Policy `pi`, critics `qf` and `target_qf`, and `log_alpha`, for Box actions; `model_config` adds
    `initial_alpha`."""

    def __init__(
        self, observation_space: gym.Space, action_space: gym.Space, model_config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        cfg = {"initial_alpha": 1.0, **self.model_config}
        catalog = Catalog(observation_space, self.model_config)
        act_dim = int(np.prod(action_space.shape))
        self.pi = catalog.build_network(2 * act_dim, 0.01)  # starts near mean 0, std 1
        self.qf = TwinQ(catalog, act_dim)
        self.target_qf = copy.deepcopy(self.qf).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor([math.log(cfg["initial_alpha"])]))  # 1-d: safetensors has no 0-d
        self._dist_cls = TanhGaussian.bounded(action_space.low, action_space.high)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.qf, self.target_qf)]

    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Env-unit actions (as stored) -> [-1, 1], the Q networks' input."""
        return (actions - self._dist_cls.bias.to(actions.device)) / self._dist_cls.scale.to(actions.device)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        mean, log_std = torch.chunk(self.pi(batch[Columns.OBS]), 2, dim=-1)
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        q1, q2 = self.qf(batch[Columns.OBS], self.normalize_actions(batch[Columns.ACTIONS]))
        return {**self.forward_inference(batch), QF_PREDS: q1, QF_TWIN_PREDS: q2}

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return self._dist_cls  # its deterministic sample (evaluation) is the squashed mean

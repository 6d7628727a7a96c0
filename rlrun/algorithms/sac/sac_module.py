"""The SAC RLModule: a tanh-squashed Gaussian policy, twin Q networks, their targets and the entropy weight.

The policy outputs `[mean, log_std]` of a Gaussian over `u`; the action is
`tanh(u)` in [-1, 1], which the distribution scales to the env's bounds, so
the env runners and the replay buffer see env units. The Q networks take
actions in [-1, 1] (the distribution's `to_unit` maps stored ones back), which
keeps their inputs the same size on every env (rlrun/algorithms/off_policy/continuous.py).
`log_alpha` lives in the module so that checkpoints and DDP's gradient average hold it like any weight.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlrun.algorithms.off_policy.continuous import QF_PREDS, QF_TWIN_PREDS, BoxBounds, Critics
from rlrun.core.columns import Columns
from rlrun.core.rl_module import Distribution, RLModule
from rlrun.core.rl_module.catalog import Catalog
from rlrun.core.rl_module.rl_module import TensorDict

# The policy's log std is clipped to this range (as in SB3 / CleanRL): a std near 0 or huge breaks the log-prob.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
_LOG_2PI = math.log(2.0 * math.pi)
# Squashed actions are kept this far inside (-1, 1) before atanh, so a stored bound action has a finite log-prob.
_ATANH_EPS = 1e-6


def squash_log_det(u: torch.Tensor) -> torch.Tensor:
    """`log(1 - tanh(u)^2)` summed over action dims, in the stable form `2 (log 2 - u - softplus(-2u))`."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


class TanhGaussian(BoxBounds, Distribution):
    """`a = bias + scale * tanh(u)`, `u ~ N(mean, std)`; inputs are `[mean, log_std]`.

    `logp` is the exact density of env-unit actions (change of variables
    through tanh and the affine scale). Subclasses made by `bounded` carry
    the env's bounds; the base class acts in [-1, 1].
    """

    def __init__(self, inputs: torch.Tensor) -> None:
        self.mean, self.log_std = torch.chunk(inputs, 2, dim=-1)

    def rsample(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised `(tanh(u), log-prob of tanh(u))` for standard normal `noise`: the loss's view, in [-1, 1]."""
        u = self.mean + self.log_std.exp() * noise
        gaussian_logp = (-0.5 * noise.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)
        return torch.tanh(u), gaussian_logp - squash_log_det(u)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        squashed, _ = self.rsample(torch.randn(self.mean.shape, generator=generator))
        return self.to_env(squashed)

    def deterministic_sample(self) -> torch.Tensor:
        return self.to_env(torch.tanh(self.mean))

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        squashed = self.to_unit(actions).clamp(-1 + _ATANH_EPS, 1 - _ATANH_EPS)
        u = torch.atanh(squashed)
        z = (u - self.mean) / self.log_std.exp()
        gaussian_logp = (-0.5 * z.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)
        return gaussian_logp - squash_log_det(u) - torch.log(self.scale).sum()


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
        self.qf = Critics(catalog, act_dim)
        self.target_qf = copy.deepcopy(self.qf).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor([math.log(cfg["initial_alpha"])]))  # 1-d: safetensors has no 0-d
        self._dist_cls = TanhGaussian.bounded(action_space.low, action_space.high)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.qf, self.target_qf)]

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        mean, log_std = torch.chunk(self.pi(batch[Columns.OBS]), 2, dim=-1)
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return self.forward_inference(batch)

    def forward_train(self, batch: TensorDict) -> TensorDict:
        q1, q2 = self.qf(batch[Columns.OBS], self._dist_cls.to_unit(batch[Columns.ACTIONS]))
        return {**self.forward_inference(batch), QF_PREDS: q1, QF_TWIN_PREDS: q2}

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return self._dist_cls  # its deterministic sample (evaluation) is the squashed mean

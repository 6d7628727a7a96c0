"""The TD3 RLModule: a deterministic actor, one or two critics, their target copies, and Gaussian exploration.

The actor's action is `tanh` of its network's output, in [-1, 1]; the distributions scale it to the env's
bounds, so env runners and the replay buffer see env units and the critics see [-1, 1]
(rlrun/algorithms/off_policy/continuous.py). Exploration adds `N(0, exploration_noise^2)` to the actor's
action and clips it to the bounds; until learning starts the env runners act uniformly at random instead,
as the paper does. Both travel in the `exploration` buffer, which the algorithm sets with every weight
sync (as DQN's epsilon), so embedded and Ray runners explore alike.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.algorithms.off_policy.continuous import QF_PREDS, QF_TWIN_PREDS, BoxBounds, Critics
from rlrun.core.columns import Columns
from rlrun.core.rl_module import Distribution, RLModule
from rlrun.core.rl_module.catalog import Catalog
from rlrun.core.rl_module.rl_module import TensorDict


class Deterministic(BoxBounds, Distribution):
    """The actor's action (inputs: `[-1, 1]` actions) in env units: TD3's policy at evaluation.

    TD3 reads no log-probabilities; `logp` is 0 so that env runners can record a column for every algorithm.
    """

    def __init__(self, inputs: torch.Tensor) -> None:
        self.action = inputs

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.deterministic_sample()

    def deterministic_sample(self) -> torch.Tensor:
        return self.to_env(self.action)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.zeros(actions.shape[:-1], device=actions.device)


class GaussianExploration(Deterministic):
    """Inputs `[action, noise std, random]`: the action plus Gaussian noise, clipped to [-1, 1], or on rows
    whose `random` is 1 a uniformly random action (the random start)."""

    def __init__(self, inputs: torch.Tensor) -> None:
        super().__init__(inputs[..., :-2])
        self.std, self.random = inputs[..., -2:-1], inputs[..., -1:] > 0.5

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noisy = (self.action + self.std * torch.randn(self.action.shape, generator=generator)).clamp(-1.0, 1.0)
        uniform = 2.0 * torch.rand(self.action.shape, generator=generator) - 1.0
        return self.to_env(torch.where(self.random, uniform, noisy))


class TD3Module(RLModule):
    """Actor `pi`, critics `qf`, their targets `target_pi` and `target_qf`, for Box actions; `model_config` adds
    `twin_q`, `exploration_noise` and `random_start` (act uniformly at random until the algorithm says not)."""

    def __init__(
        self, observation_space: gym.Space, action_space: gym.Space, model_config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        cfg = {"twin_q": True, "exploration_noise": 0.1, "random_start": False, **self.model_config}
        catalog = Catalog(observation_space, self.model_config)
        act_dim = int(np.prod(action_space.shape))
        self.pi = catalog.build_network(act_dim, 0.01)  # starts near the middle of the bounds
        self.qf = Critics(catalog, act_dim, twin=bool(cfg["twin_q"]))
        self.target_pi = copy.deepcopy(self.pi).requires_grad_(False)
        self.target_qf = copy.deepcopy(self.qf).requires_grad_(False)
        self.register_buffer("exploration", torch.tensor([float(cfg["exploration_noise"]),
                                                          float(bool(cfg["random_start"]))]))
        self._dist_cls = Deterministic.bounded(action_space.low, action_space.high)
        self._exploration_cls = GaussianExploration.bounded(action_space.low, action_space.high)

    def actor(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """The (target) actor's action in [-1, 1]."""
        return torch.tanh((self.target_pi if target else self.pi)(obs))

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.qf, self.target_qf), (self.pi, self.target_pi)]

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return {Columns.ACTION_DIST_INPUTS: self.actor(batch[Columns.OBS])}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        action = self.actor(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: torch.cat([action, self.exploration.expand(len(action), 2)], dim=-1)}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        """The actor's actions and the critics' Q-values of the replayed actions."""
        q_values = self.qf(batch[Columns.OBS], self._dist_cls.to_unit(batch[Columns.ACTIONS]))
        return {**self.forward_inference(batch), **dict(zip((QF_PREDS, QF_TWIN_PREDS), q_values))}

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return self._dist_cls

    def get_exploration_action_dist_cls(self) -> type[Distribution]:
        return self._exploration_cls

"""Users' own networks for `model.encoder=user_models:...` and `model.module_class=user_models:...` (tests/ is on
the PYTHONPATH of CLI subprocesses and Ray workers), and broken ones whose one-line errors the tests check."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module import Categorical, Distribution, RLModule


class TinyEncoder(nn.Module):
    """A vector encoder: one tanh layer of 16 units (the catalog's hidden layers and heads follow it)."""

    def __init__(self, observation_space: gym.Space, model_config: dict[str, Any]) -> None:
        super().__init__()
        self.out_dim = 16
        self.net = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), self.out_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.flatten(1).float())


class DictEncoder(nn.Module):
    """A structured-observation encoder: it receives the Dict space and, in forward, a dict of tensors."""

    def __init__(self, observation_space: gym.spaces.Dict, model_config: dict[str, Any]) -> None:
        super().__init__()
        self.position = observation_space["position"]
        self.out_dim = int(self.position.n) + int(np.prod(observation_space["velocity"].shape))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        one_hot = nn.functional.one_hot(obs["position"].long(), int(self.position.n)).float()
        return torch.cat([one_hot, obs["velocity"].float().flatten(1)], dim=-1)


class PositionEnv(gym.Env):
    """A Dict observation (a Discrete position and a Box velocity) for DictEncoder; reward 1 for action 1."""

    def __init__(self, length: int = 5) -> None:
        self.observation_space = gym.spaces.Dict(position=gym.spaces.Discrete(length),
                                                 velocity=gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
        self.action_space = gym.spaces.Discrete(2)
        self.length = length
        self.t = 0

    def _obs(self) -> dict[str, Any]:
        return {"position": min(self.t, self.length - 1), "velocity": np.full(2, self.t / self.length, np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return self._obs(), float(action), self.t >= self.length, False, {}


class ActorCritic(RLModule):
    """A whole PPO module of one's own: a shared tanh torso, a categorical policy head and a value head."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 model_config: dict[str, Any] | None = None) -> None:
        super().__init__(observation_space, action_space, model_config)
        self.torso = nn.Sequential(nn.Linear(int(np.prod(observation_space.shape)), 32), nn.Tanh())
        self.pi = nn.Linear(32, int(action_space.n))
        self.vf = nn.Linear(32, 1)

    def forward_exploration(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {Columns.ACTION_DIST_INPUTS: self.pi(self.torso(batch[Columns.OBS].float()))}

    def forward_train(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = self.torso(batch[Columns.OBS].float())
        return {Columns.ACTION_DIST_INPUTS: self.pi(features), Columns.VF_PREDS: self.vf(features).squeeze(-1)}

    def compute_values(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.vf(self.torso(batch[Columns.OBS].float())).squeeze(-1)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return Categorical


# -- broken classes: each fails the contract in one way -------------------------------------------------


class NoOutDim(TinyEncoder):
    """Forgets to say how many features it returns."""

    def __init__(self, observation_space: gym.Space, model_config: dict[str, Any]) -> None:
        super().__init__(observation_space, model_config)
        del self.out_dim


class WrongWidth(TinyEncoder):
    """Returns one feature more than its out_dim."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.cat([super().forward(obs), obs[:, :1].float()], dim=-1)


class NotAModule:
    """Not an nn.Module at all."""


class NoValues(ActorCritic):
    """PPO's GAE calls compute_values; this module does not have it."""

    compute_values = None  # type: ignore[assignment]


class NoVfPreds(ActorCritic):
    """forward_train without the value predictions PPO's loss reads."""

    def forward_train(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {Columns.ACTION_DIST_INPUTS: self.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]}


class WrongValueShape(ActorCritic):
    """Values as [N, 1] instead of [N]."""

    def forward_train(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = super().forward_train(batch)
        return {**out, Columns.VF_PREDS: out[Columns.VF_PREDS][:, None]}

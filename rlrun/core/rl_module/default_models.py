"""The default actor-critic RLModule: MLP policy and value networks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module.distributions import Categorical, DiagGaussian, Distribution
from rlrun.core.rl_module.rl_module import RLModule, TensorDict

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def hidden_stack(in_dim: int, hiddens: Sequence[int], activation: str) -> nn.Sequential:
    """Linear + activation layers, orthogonal init with gain sqrt(2) as in CleanRL."""
    layers: list[nn.Module] = []
    for size in hiddens:
        layers += [_orthogonal(nn.Linear(in_dim, size), np.sqrt(2)), ACTIVATIONS[activation]()]
        in_dim = size
    return nn.Sequential(*layers)


def mlp(in_dim: int, hiddens: Sequence[int], out_dim: int, activation: str, out_gain: float) -> nn.Sequential:
    """Hidden stack plus a linear head with a small `out_gain` (0.01 for policies)."""
    head = _orthogonal(nn.Linear(hiddens[-1] if hiddens else in_dim, out_dim), out_gain)
    return hidden_stack(in_dim, hiddens, activation).append(head)


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class DefaultActorCriticModule(RLModule):
    """Policy head for Discrete (categorical) or Box (diagonal Gaussian) actions, plus a value head.

    With `vf_share_layers` the value head sits on the policy's hidden layers;
    otherwise the value function is a separate MLP, which keeps the two losses
    from fighting over shared features (the better default for small control tasks).
    With `central_value` (MAPPO) the observation space is `Dict(obs=..., state=...)`: the
    policy sees `obs`, the value MLP `obs` and the global `state` (batch column `Columns.STATE`)
    side by side: MAPPO's agent-specific global state (Yu et al. 2022), which tells a shared
    critic whose return it predicts.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        cfg = {"hiddens": [64, 64], "activation": "tanh", "vf_share_layers": False, "central_value": False,
               **self.model_config}
        hiddens, activation = list(cfg["hiddens"]), cfg["activation"]
        self.central_value = bool(cfg["central_value"])
        if self.central_value:
            observation_space, state_space = observation_space["obs"], observation_space["state"]
        obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.vf_share_layers = bool(cfg["vf_share_layers"])
        if self.vf_share_layers:
            self.encoder = hidden_stack(obs_dim, hiddens, activation)
            feat = hiddens[-1] if hiddens else obs_dim
            self.pi = _orthogonal(nn.Linear(feat, act_dim), 0.01)
            self.vf = _orthogonal(nn.Linear(feat, 1), 1.0)
        else:
            self.encoder = nn.Sequential()
            self.pi = mlp(obs_dim, hiddens, act_dim, activation, 0.01)
            vf_in = obs_dim + (int(np.prod(state_space.shape)) if self.central_value else 0)
            self.vf = mlp(vf_in, hiddens, 1, activation, 1.0)
        if not self.discrete:
            # State-independent log std: the standard choice for PPO on continuous control.
            self.log_std = nn.Parameter(torch.zeros(act_dim))

    def _dist_inputs(self, features: torch.Tensor) -> torch.Tensor:
        out = self.pi(features)
        if self.discrete:
            return out
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        features = self.encoder(batch[Columns.OBS].flatten(1))
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(features)}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        features = self.encoder(batch[Columns.OBS].flatten(1))
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(features),
            Columns.VF_PREDS: self._values(batch, features),
        }

    def compute_values(self, batch: TensorDict) -> torch.Tensor:
        return self._values(batch, self.encoder(batch[Columns.OBS].flatten(1)))

    def _values(self, batch: TensorDict, features: torch.Tensor) -> torch.Tensor:
        if self.central_value:
            features = torch.cat([features, batch[Columns.STATE].flatten(1)], dim=-1)
        return self.vf(features).squeeze(-1)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return Categorical if self.discrete else DiagGaussian

"""The default actor-critic RLModule: policy and value networks from the model catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module.action_masking import action_mask, mask_logits
from rlrun.core.rl_module.catalog import Catalog, orthogonal
from rlrun.core.rl_module.distributions import DiagGaussian, Distribution, policy_distribution
from rlrun.core.rl_module.rl_module import RLModule, TensorDict


class DefaultActorCriticModule(RLModule):
    """Policy head for Discrete (categorical), MultiDiscrete (one categorical per sub-action), MultiBinary
    (Bernoullis) or Box (diagonal Gaussian) actions, plus a value head.

    Both networks come from the model catalog (an MLP for vectors, a CNN for images).
    With `vf_share_layers` the value head sits on the policy's encoder and hidden layers;
    otherwise the value function is a separate network, which keeps the two losses
    from fighting over shared features (the better default for small control tasks).
    With `central_value` (MAPPO) the observation space is `Dict(obs=..., state=...)`: the
    policy sees `obs`, the value MLP `obs` and the global `state` (batch column `Columns.STATE`)
    side by side: MAPPO's agent-specific global state (Yu et al. 2022), which tells a shared
    critic whose return it predicts.
    An `action_mask` entry in the observation masks the policy's logits (rlrun/core/rl_module/action_masking.py).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        cfg = {"vf_share_layers": False, "central_value": False, **self.model_config}
        self.central_value = bool(cfg["central_value"])
        if self.central_value:
            observation_space, state_space = observation_space["obs"], observation_space["state"]
        self.policy_space = observation_space  # what the policy sees, and where its action mask is
        catalog = Catalog(observation_space, self.model_config)
        self._dist_cls, act_dim = policy_distribution(action_space)
        self.gaussian = self._dist_cls is DiagGaussian
        self.vf_share_layers = bool(cfg["vf_share_layers"])
        if self.vf_share_layers:
            self.encoder, features = catalog.build_torso()
            self.pi = orthogonal(nn.Linear(features, act_dim), 0.01)
            self.vf = orthogonal(nn.Linear(features, 1), 1.0)
        else:
            self.encoder = None
            self.pi = catalog.build_network(act_dim, 0.01)
            state_dim = int(np.prod(state_space.shape)) if self.central_value else 0
            self.vf = catalog.build_network(1, 1.0, extra_inputs=state_dim)
        if self.gaussian:
            # State-independent log std: the standard choice for PPO on continuous control.
            self.log_std = initial_log_std(act_dim, self.model_config)

    def _dist_inputs(self, batch: TensorDict, features: torch.Tensor) -> torch.Tensor:
        return policy_dist_inputs(self.pi(features), batch[Columns.OBS], self.policy_space,
                                  self.log_std if self.gaussian else None)

    def _features(self, batch: TensorDict) -> torch.Tensor:
        """The shared torso's output, or the observations themselves when each network encodes its own."""
        obs = batch[Columns.OBS]
        return self.encoder(obs) if self.vf_share_layers else obs

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(batch, self._features(batch))}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        features = self._features(batch)
        return {
            Columns.ACTION_DIST_INPUTS: self._dist_inputs(batch, features),
            Columns.VF_PREDS: self._values(batch, features),
        }

    def compute_values(self, batch: TensorDict) -> torch.Tensor:
        return self._values(batch, self._features(batch))

    def _values(self, batch: TensorDict, features: torch.Tensor) -> torch.Tensor:
        if self.central_value:
            return self.vf(features, batch[Columns.STATE]).squeeze(-1)
        return self.vf(features).squeeze(-1)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return self._dist_cls


def initial_log_std(act_dim: int, model_config: Mapping[str, Any]) -> nn.Parameter:
    """A Gaussian policy's trained, state-independent log std, one per action dimension, at `model.log_std_init`."""
    return nn.Parameter(torch.full((act_dim,), float(model_config.get("log_std_init", 0.0))))


def policy_dist_inputs(out: torch.Tensor, obs: torch.Tensor, space: gym.Space,
                       log_std: torch.Tensor | None) -> torch.Tensor:
    """The action distribution's inputs from a policy head's output: the Gaussian's means with the
    state-independent `log_std`, or the logits with the observation's action mask applied (any leading dims)."""
    if log_std is not None:
        return torch.cat([out, log_std.expand_as(out)], dim=-1)
    return mask_logits(out, action_mask(space, obs))

"""The default actor-critic with memory (`model.use_lstm` / `model.use_gru`), for PPO.

The policy and value networks of DefaultActorCriticModule, each with a recurrent core between its
torso and its head (rlrun/core/rl_module/recurrent.py), or one torso and core under both heads with
`model.vf_share_layers` (CleanRL's `ppo_atari_lstm.py`). sb3-contrib's RecurrentPPO also gives the critic
an LSTM of its own by default: a value network without memory could not tell the states apart either.

The state (`Columns.STATE_IN` / `STATE_OUT`) is the policy core's state followed by the value core's. Env
runners call `forward_exploration` / `forward_inference` on one step per env copy (`[B, ...]`
observations, previous actions and rewards, and a `[B, S]` state); learners call `forward_train` and
`compute_values` on padded sequences (those columns `[N, L, ...]`, the `[N, S]` state at each sequence's
first step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlrun.core.columns import RECURRENT_STEP_INPUTS, Columns
from rlrun.core.rl_module.catalog import Catalog, orthogonal
from rlrun.core.rl_module.default_models import initial_log_std, policy_dist_inputs
from rlrun.core.rl_module.distributions import DiagGaussian, Distribution, policy_distribution
from rlrun.core.rl_module.recurrent import RecurrentNetwork
from rlrun.core.rl_module.rl_module import RLModule, TensorDict


class RecurrentActorCriticModule(RLModule):
    """Policy and value networks with an LSTM or GRU after the catalog's encoder."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        catalog = Catalog(observation_space, self.model_config)
        self._dist_cls, act_dim = policy_distribution(action_space)
        self.gaussian = self._dist_cls is DiagGaussian
        self.vf_share_layers = bool(self.model_config.get("vf_share_layers"))
        if self.vf_share_layers:
            self.torso = RecurrentNetwork(catalog, action_space, 0, 1.0)
            self.pi = orthogonal(nn.Linear(self.torso.out_dim, act_dim), 0.01)
            self.vf = orthogonal(nn.Linear(self.torso.out_dim, 1), 1.0)
            self.state_size = self.torso.state_size
        else:
            self.pi = RecurrentNetwork(catalog, action_space, act_dim, 0.01)
            self.vf = RecurrentNetwork(catalog, action_space, 1, 1.0)
            self.state_size = self.pi.state_size + self.vf.state_size
        if self.gaussian:
            self.log_std = initial_log_std(act_dim, self.model_config)
        self.previous_step_inputs = tuple((self.torso if self.vf_share_layers else self.pi).previous.columns)

    def _unroll(self, batch: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(policy outputs, values, state after the last step) of `[N, L, ...]` step inputs (observations, and the
        previous actions and rewards where the model reads them) from `[N, S]` states (`Columns.STATE_IN`)."""
        state = batch[Columns.STATE_IN].to(dtype=torch.float32)
        if self.vf_share_layers:
            features, state_out = self.torso(batch, state)
            return self.pi(features), self.vf(features).squeeze(-1), state_out
        pi_state, vf_state = state.split([self.pi.state_size, self.vf.state_size], dim=-1)
        logits, pi_state = self.pi(batch, pi_state)
        values, vf_state = self.vf(batch, vf_state)
        return logits, values.squeeze(-1), torch.cat([pi_state, vf_state], dim=-1)

    def _dist_inputs(self, obs: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return policy_dist_inputs(out, obs, self.observation_space, self.log_std if self.gaussian else None)

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        # One step of each env copy: sequences of length 1.
        steps = {key: value.unsqueeze(1) for key, value in batch.items() if key in RECURRENT_STEP_INPUTS}
        out, _, state_out = self._unroll({**steps, Columns.STATE_IN: batch[Columns.STATE_IN]})
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(steps[Columns.OBS], out).squeeze(1),
                Columns.STATE_OUT: state_out}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        out, values, _ = self._unroll(batch)
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(batch[Columns.OBS], out), Columns.VF_PREDS: values}

    def compute_values(self, batch: TensorDict) -> torch.Tensor:
        # The value network alone: GAE's values need none of the policy's outputs.
        state = batch[Columns.STATE_IN].to(dtype=torch.float32)
        if self.vf_share_layers:
            return self.vf(self.torso(batch, state)[0]).squeeze(-1)
        return self.vf(batch, state[..., self.pi.state_size:])[0].squeeze(-1)

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return self._dist_cls

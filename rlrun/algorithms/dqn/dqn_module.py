"""The DQN RLModule: a Q network (optionally dueling), its target copy, and epsilon-greedy exploration.

Target-network API (as RLlib's): `get_target_network_pairs()` lists (online,
target) pairs for the learner's polyak update and `forward_target` evaluates
the target. The target lives in the module so that checkpoints hold it; it
has no gradients. The exploration epsilon is a buffer that the algorithm sets
from its schedule with every weight sync, so the env runners need no extra
channel and evaluation (`forward_inference`) is greedy.

With an `action_mask` in the observation, the Q-values the module acts on (`forward_inference`,
`forward_exploration`, and `ACTION_DIST_INPUTS` of `forward_train`) put illegal actions at `finfo.min`:
greedy acting and epsilon-greedy's random draw pick legal actions only. `QF_PREDS` and `forward_target`
stay unmasked: the loss reads the value of a taken (so legal) action, and the learner masks its own argmax.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlrun.core.columns import Columns
from rlrun.core.rl_module import Categorical, Distribution, RLModule
from rlrun.core.rl_module.action_masking import action_mask, mask_logits
from rlrun.core.rl_module.catalog import Catalog
from rlrun.core.rl_module.rl_module import TensorDict

# forward_train's Q-values of every action, [batch, actions].
QF_PREDS = "qf_preds"


class QNetwork(nn.Module):
    """The catalog's encoder and hidden layers, then one Q-value per action; dueling: V(s) + A(s, a) - mean_a A(s, a)
    (Wang et al. 2016)."""

    def __init__(self, catalog: Catalog, num_actions: int, dueling: bool) -> None:
        super().__init__()
        self.encoder, features = catalog.build_torso()
        self.dueling = dueling
        self.advantages = nn.Linear(features, num_actions)
        self.value = nn.Linear(features, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(obs)
        advantages = self.advantages(features)
        if self.value is None:
            return advantages
        return self.value(features) + advantages - advantages.mean(dim=-1, keepdim=True)


class DQNModule(RLModule):
    """Online and target Q networks for Discrete actions; `model_config` adds `dueling` and `epsilon`."""

    def __init__(
        self, observation_space: gym.Space, action_space: gym.Space, model_config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        cfg = {"dueling": True, "epsilon": 1.0, **self.model_config}
        self.q = QNetwork(Catalog(observation_space, self.model_config), int(action_space.n), bool(cfg["dueling"]))
        self.target_q = copy.deepcopy(self.q).requires_grad_(False)
        self.register_buffer("epsilon", torch.tensor([float(cfg["epsilon"])]))  # 1-d: safetensors has no 0-d

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.q, self.target_q)]

    def forward_target(self, batch: TensorDict) -> torch.Tensor:
        return self.target_q(batch[Columns.OBS])

    def masked(self, q: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Q-values of observations `obs` with their illegal actions at `finfo.min` (as they are without a mask)."""
        return mask_logits(q, action_mask(self.observation_space, obs))

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        obs = batch[Columns.OBS]
        return {Columns.ACTION_DIST_INPUTS: self.masked(self.q(obs), obs)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        q = self.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        return {Columns.ACTION_DIST_INPUTS: torch.cat([q, self.epsilon.expand(len(q), 1)], dim=-1)}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        obs = batch[Columns.OBS]
        q = self.q(obs)
        return {QF_PREDS: q, Columns.ACTION_DIST_INPUTS: self.masked(q, obs)}

    def get_train_action_dist_cls(self) -> type[Distribution]:
        return Categorical  # its deterministic sample is the greedy action

    def get_exploration_action_dist_cls(self) -> type[Distribution]:
        return EpsilonGreedy


class EpsilonGreedy(Distribution):
    """The greedy action with probability 1 - epsilon, else a uniform one among the legal actions; inputs are
    `[Q-values, epsilon]`, illegal actions' Q-values at `finfo.min` (`DQNModule.masked`)."""

    def __init__(self, inputs: torch.Tensor) -> None:
        self.q, self.epsilon = inputs[..., :-1], inputs[..., -1]
        self.legal = self.q > torch.finfo(self.q.dtype).min
        self.num_legal = self.legal.sum(-1).clamp(min=1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        explore = torch.rand(self.epsilon.shape, generator=generator) < self.epsilon
        # A uniform legal action: the k-th legal one for k uniform in [0, num_legal).
        # (A row with no legal action, a finished episode's last observation, gets the last action: never played.)
        k = (torch.rand(self.epsilon.shape, generator=generator) * self.num_legal).long()
        uniform = torch.searchsorted(self.legal.long().cumsum(-1), (k + 1).unsqueeze(-1)).squeeze(-1)
        uniform = uniform.clamp(max=self.q.shape[-1] - 1)
        return torch.where(explore, uniform, self.deterministic_sample())

    def deterministic_sample(self) -> torch.Tensor:
        return torch.argmax(self.q, dim=-1)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        greedy = (actions == self.deterministic_sample()).float()
        return torch.log(self.epsilon / self.num_legal + (1 - self.epsilon) * greedy)

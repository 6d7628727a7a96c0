"""RLModule (one policy's networks) and MultiRLModule (a container keyed by module id)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.arrays import as_tensor
from rlrun.core.rl_module.distributions import Distribution

TensorDict = dict[str, torch.Tensor]


class RLModule(nn.Module):
    """The neural network(s) of one policy.

    Env runners call `forward_exploration` / `forward_inference`; learners call
    `forward_train`. Every forward takes a batch dict and returns a dict holding
    `Columns.ACTION_DIST_INPUTS`, the input of the action distribution class.

    A stateful (recurrent) module has `state_size > 0`: its forwards also read `Columns.STATE_IN`, one
    float vector per env copy, the runners' forwards return `Columns.STATE_OUT`, and `forward_train`
    takes padded sequences `[N, L, ...]` (rlrun/core/rl_module/recurrent_actor_critic.py). Its forwards
    may also read the previous step's action and reward, the columns named in `previous_step_inputs`
    (`Columns.PREV_ACTIONS`, `PREV_REWARDS`), which whoever steps it keeps (rlrun/core/rl_module/memory.py).
    """

    state_size: int = 0
    previous_step_inputs: tuple[str, ...] = ()

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.model_config = dict(model_config or {})

    def is_stateful(self) -> bool:
        """Whether the module carries a state from step to step (RLlib's name)."""
        return self.state_size > 0

    def get_initial_state(self) -> np.ndarray:
        """The state an episode starts from, `[state_size]`."""
        return np.zeros(self.state_size, dtype=np.float32)

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        return self.forward_exploration(batch)

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        raise NotImplementedError

    def forward_train(self, batch: TensorDict) -> TensorDict:
        raise NotImplementedError

    def get_train_action_dist_cls(self) -> type[Distribution]:
        raise NotImplementedError

    def get_exploration_action_dist_cls(self) -> type[Distribution]:
        return self.get_train_action_dist_cls()

    def get_inference_action_dist_cls(self) -> type[Distribution]:
        return self.get_train_action_dist_cls()

    def get_state(self) -> dict[str, np.ndarray]:
        """Weights as numpy arrays: framework-free, so they cross processes cheaply."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.state_dict().items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        current = self.state_dict()
        missing = set(current) - set(state)
        if missing:
            raise ValueError(f"module state lacks weights {sorted(missing)}")
        with torch.no_grad():
            for k, v in current.items():
                v.copy_(as_tensor(state[k]))


class MultiRLModule(nn.ModuleDict):
    """RLModules keyed by module id; single-agent runs hold one, `DEFAULT_MODULE_ID`."""

    def get_state(self) -> dict[str, dict[str, np.ndarray]]:
        return {module_id: module.get_state() for module_id, module in self.items()}

    def set_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        for module_id, module_state in state.items():
            if module_id not in self:
                raise ValueError(f"unknown module id {module_id!r}; have {list(self.keys())}")
            self[module_id].set_state(module_state)

"""What a stateful (recurrent) module carries from one step of each env copy to the next.

Env runners, `rlrun-eval`'s video and `rlrun.load`'s policies all step a module through episodes, so all
three keep the same memory per row (env copy): the module's state (`Columns.STATE_IN`) and, where its model
reads them (`model.lstm_use_prev_action` / `lstm_use_prev_reward`), the previous step's action and reward
(`Columns.PREV_ACTIONS` / `PREV_REWARDS`). A row starts an episode from the initial state and zeros.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.core.columns import Columns
from rlrun.core.rl_module.rl_module import RLModule


def _previous_column(column: str, action_space: gym.Space, rows: int) -> np.ndarray:
    if column == Columns.PREV_ACTIONS:
        return np.zeros((rows, *action_space.shape), dtype=action_space.dtype)
    return np.zeros(rows, dtype=np.float32)


class Memory:
    """The memory of `rows` env copies for one stateful module."""

    def __init__(self, module: RLModule, rows: int) -> None:
        self.initial = module.get_initial_state()
        self.state = np.tile(self.initial, (rows, 1))
        self.previous = {column: _previous_column(column, module.action_space, rows)
                         for column in module.previous_step_inputs}

    def __len__(self) -> int:
        return len(self.state)

    def columns(self) -> dict[str, np.ndarray]:
        """The memory as batch columns, one row per env copy (the module's inputs besides the observation)."""
        return {Columns.STATE_IN: self.state, **self.previous}

    def inputs(self) -> dict[str, torch.Tensor]:
        return {column: torch.from_numpy(value) for column, value in self.columns().items()}

    def feed(self, inputs: dict[str, torch.Tensor], buffers: dict[str, np.ndarray], t: int) -> None:
        """A runner's step: record the memory in row `t` of the batch's `buffers` and add it to the forward
        pass's `inputs`."""
        for column, value in self.columns().items():
            buffers[column][t] = value
        inputs.update(self.inputs())

    def step(self, state_out: np.ndarray, actions: np.ndarray, rewards: np.ndarray | None) -> None:
        """After a step: the state the module returned, and the action taken and reward received (`rewards` may be
        None where the module does not read them)."""
        self.state = np.asarray(state_out, dtype=np.float32)
        # Copies: `reset` writes into these in place, and the callers' arrays are a batch's rows or a user's actions.
        if Columns.PREV_ACTIONS in self.previous:
            self.previous[Columns.PREV_ACTIONS] = np.array(actions, dtype=self.previous[Columns.PREV_ACTIONS].dtype)
        if Columns.PREV_REWARDS in self.previous:
            self.previous[Columns.PREV_REWARDS] = np.array(rewards, dtype=np.float32)

    def reset(self, rows: np.ndarray | slice = slice(None)) -> None:
        """Start the episodes of `rows` (a bool mask or a slice) afresh."""
        self.state[rows] = self.initial
        for value in self.previous.values():
            value[rows] = 0

    def get_state(self) -> dict[str, Any]:
        """Plain data for a checkpoint of the episodes in flight."""
        return {"recurrent_state": self.state.copy(), **{column: v.copy() for column, v in self.previous.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.state = np.array(state["recurrent_state"], dtype=np.float32)
        for column, value in self.previous.items():
            self.previous[column] = np.array(state[column], dtype=value.dtype)

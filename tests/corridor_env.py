"""A tiny deterministic env for fast learning tests (importable as `corridor_env` with tests/ on the path)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class CorridorEnv(gym.Env):
    """Cells 0..length-1, start at 0, one-hot observation; action 1 steps right, 0 left.

    Reaching the last cell pays 1 and terminates; an episode is truncated after
    `max_steps`. The optimal (greedy) episode takes `length - 1` steps, return 1.
    """

    def __init__(self, length: int = 5, max_steps: int = 20) -> None:
        self.length, self.max_steps = length, max_steps
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(length,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._pos = self._t = 0

    def _obs(self) -> np.ndarray:
        return np.eye(self.length, dtype=np.float32)[self._pos]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self._t = 0
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        self._pos = int(np.clip(self._pos + (1 if action == 1 else -1), 0, self.length - 1))
        at_goal = self._pos == self.length - 1
        return self._obs(), float(at_goal), at_goal, self._t >= self.max_steps and not at_goal, {}

"""A tiny continuous-control env for fast SAC tests (importable as `target_env` with tests/ on the path)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class TargetEnv(gym.Env):
    """Move a point on [-1, 1] to a random target: observation `[position, target]`, action a step in
    [-0.5, 0.5], reward `-|position - target|` after each step, truncated after `max_steps`.

    The best policy reaches any target within two steps (expected return about -0.13 over 5 steps);
    standing still returns about -2.5 and uniformly random steps about -1.9.
    """

    def __init__(self, max_steps: int = 5) -> None:
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-0.5, 0.5, shape=(1,), dtype=np.float32)
        self._pos = self._target = 0.0
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self._pos, self._target], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos, self._t = 0.0, 0
        self._target = float(self.np_random.uniform(-1.0, 1.0))
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        self._pos = float(np.clip(self._pos + float(np.asarray(action).reshape(-1)[0]), -1.0, 1.0))
        reward = -abs(self._pos - self._target)
        return self._obs(), reward, False, self._t >= self.max_steps, {}

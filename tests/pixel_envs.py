"""A tiny pixel env for the uint8-observation tests (importable as `pixel_envs` with tests/ on the path)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class PixelEnv(gym.Env):
    """36x36 uint8 noise frames (an image space to Minari, which would JPEG them; the smallest the Nature CNN
    takes), Discrete(3) actions; an episode ends after 3 to 8 steps, terminated when the action matches the
    frame's first pixel mod 3."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape=(36, 36), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self._left = 0
        self._frame = np.zeros((36, 36), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._left = int(self.np_random.integers(3, 9))
        return self._new_frame(), {}

    def step(self, action):
        terminated = int(action) == self._frame[0, 0] % 3
        self._left -= 1
        return self._new_frame(), float(terminated), bool(terminated), self._left == 0 and not terminated, {}

    def _new_frame(self) -> np.ndarray:
        self._frame = self.np_random.integers(0, 256, size=(36, 36), dtype=np.uint8)
        return self._frame.copy()

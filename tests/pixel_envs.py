"""Tiny pixel envs for the uint8-observation tests (importable as `pixel_envs` with tests/ on the path)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class PixelEnv(gym.Env):
    """size x size uint8 noise frames (36x36 by default: an image space to Minari, which would JPEG them; the
    smallest the Nature CNN takes), Discrete(3) actions; an episode ends after 3 to 8 steps, terminated when the
    action matches the frame's first pixel mod 3. `env.env_config={size: 8}` makes frames for `model.cnn=small`."""

    def __init__(self, size: int = 36) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, shape=(size, size), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self._left = 0
        self._frame = np.zeros((size, size), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._left = int(self.np_random.integers(3, 9))
        return self._new_frame(), {}

    def step(self, action):
        terminated = int(action) == self._frame[0, 0] % 3
        self._left -= 1
        return self._new_frame(), float(terminated), bool(terminated), self._left == 0 and not terminated, {}

    def _new_frame(self) -> np.ndarray:
        self._frame = self.np_random.integers(0, 256, size=(self.size, self.size), dtype=np.uint8)
        return self._frame.copy()


class PixelBoxEnv(gym.Env):
    """SAC's pixel env: (3, size, size) uint8 RGB noise frames, a Box(-1, 1, (2,)) action; the reward is how close
    the action comes to the frame's first pixel mapped into [-1, 1] (both dimensions); 5 steps an episode,
    truncated."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, shape=(3, size, size), dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._t = 0
        self._frame = np.zeros((3, size, size), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._new_frame(), {}

    def step(self, action):
        target = self._frame[0, 0, 0] / 127.5 - 1.0
        reward = -float(np.abs(np.asarray(action, dtype=np.float64) - target).mean())
        self._t += 1
        return self._new_frame(), reward, False, self._t == 5, {}

    def _new_frame(self) -> np.ndarray:
        self._frame = self.np_random.integers(0, 256, size=(3, self.size, self.size), dtype=np.uint8)
        return self._frame.copy()

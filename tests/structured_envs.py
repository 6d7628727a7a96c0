"""Tiny envs with structured observations for tests/test_obs_spaces.py (importable as `structured_envs`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class CueEnv(gym.Env):
    """A Dict observation of every kind of part: reward 1 when the action matches the `cue` category.

    `cue` is Discrete(3, start=1) (so only its one-hot tells the policy what to do), `pixels` a uint8 image,
    `speed` floats far from 0 (what MeanStdFilter normalises), `flags` MultiBinary and `note` Text (left out).
    Episodes last `length` steps.
    """

    def __init__(self, length: int = 8) -> None:
        self.length = length
        self.observation_space = gym.spaces.Dict({
            "cue": gym.spaces.Discrete(3, start=1),
            "pixels": gym.spaces.Box(0, 255, (6, 6, 3), np.uint8),
            "speed": gym.spaces.Box(-100.0, 100.0, (2,), np.float32),
            "flags": gym.spaces.MultiBinary(2),
            "note": gym.spaces.Text(8),
        })
        self.action_space = gym.spaces.Discrete(3)
        self._t = 0
        self._cue = 1

    def _obs(self) -> dict[str, Any]:
        self._cue = int(self.np_random.integers(1, 4))
        return {"cue": self._cue, "pixels": self.np_random.integers(0, 256, (6, 6, 3), dtype=np.uint8),
                "speed": self.np_random.normal(50.0, 10.0, 2).astype(np.float32),
                "flags": self.np_random.integers(0, 2, 2, dtype=np.int8), "note": "go"}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) + 1 == self._cue)
        self._t += 1
        return self._obs(), reward, self._t >= self.length, False, {}

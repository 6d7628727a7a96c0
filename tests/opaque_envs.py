"""A user env whose state is not plain data, for the resume tests (importable as `opaque_envs` from tests/)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class _World:
    """Where the episode's progress lives: an object of the user's, like a physics engine's world."""

    def __init__(self) -> None:
        self.t = 0
        self.length = 1


class OpaqueStateEnv(gym.Env):
    """Episodes of a random length (3 to `max_length` - 1 steps, drawn at reset); reward 1 for action 0.

    The observation is (t / length, length / max_length): a fresh episode starts at
    (0, ...). The step count and length sit in a `_World`, which rlrun cannot
    snapshot without pickling, so a resumed run has to start fresh episodes.
    """

    def __init__(self, max_length: int = 20) -> None:
        self.max_length = max_length
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._world = _World()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._world.t = 0
        self._world.length = int(self.np_random.integers(3, self.max_length))
        return self._obs(), {}

    def step(self, action):
        self._world.t += 1
        return self._obs(), float(action == 0), self._world.t >= self._world.length, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self._world.t / self._world.length, self._world.length / self.max_length], dtype=np.float32)

"""Tiny user envs for the `env.id=<module>:<Class>` tests (importable as `user_envs` with tests/ on the path)."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np


class TinyEnv(gym.Env):
    """Box(2,) observation, Discrete(2) action: reward 1 for action 0, episode of `length` steps."""

    def __init__(self, length: int = 10) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        self._t += 1
        obs = np.full(2, self._t / self.length, dtype=np.float32).clip(-1.0, 1.0)
        return obs, float(action == 0), self._t >= self.length, False, {}


class MultiBinaryActionEnv(TinyEnv):
    """Same as TinyEnv but with a MultiBinary action space, which no rlrun algorithm supports."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.action_space = gym.spaces.MultiBinary(3)


class TupleActionEnv(TinyEnv):
    """Same as TinyEnv but with a Tuple action space."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3)))


class DictObsEnv(TinyEnv):
    """A Dict observation space: the default model needs a Box."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)})


class BrokenEnv(TinyEnv):
    """Raises in its constructor, like a user env given a bad env_config."""

    def __init__(self, length: int = 10) -> None:
        raise RuntimeError("BrokenEnv refuses to start")


class CrashOnceEnv(gym.Wrapper):
    """CartPole that raises once, in whichever env first steps while `crash_file` exists.

    The file is removed by the env that crashes (removal succeeds in one process
    only), so exactly one env runner fails: a real env error mid-run, on demand.
    """

    def __init__(self, crash_file: str = "") -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.crash_file = crash_file

    def step(self, action):
        if self.crash_file:
            try:
                os.remove(self.crash_file)
            except FileNotFoundError:
                pass
            else:
                raise RuntimeError("CrashOnceEnv crashed on purpose")
        return self.env.step(action)

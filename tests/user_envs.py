"""Tiny user envs for the `env.id=<module>:<Class>` tests (importable as `user_envs` with tests/ on the path)."""

from __future__ import annotations

import os
import time
from pathlib import Path
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
    """Same as TinyEnv but with a MultiBinary action space, which DQN and SAC refuse."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.action_space = gym.spaces.MultiBinary(3)


class TupleActionEnv(TinyEnv):
    """Same as TinyEnv but with a Tuple action space."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3)))


class DictObsEnv(TinyEnv):
    """A Dict observation space with nothing a network can use: only text."""

    def __init__(self, length: int = 10) -> None:
        super().__init__(length)
        self.observation_space = gym.spaces.Dict({"note": gym.spaces.Text(8)})


class BrokenEnv(TinyEnv):
    """Raises in its constructor, like a user env given a bad env_config."""

    def __init__(self, length: int = 10) -> None:
        raise RuntimeError("BrokenEnv refuses to start")


class BarrierEnv(TinyEnv):
    """TinyEnv whose construction waits until `parties` processes have constructed one.

    Each process announces itself with a file named after its pid in `barrier_dir` and waits
    for the others' files, so sweep jobs on this env can only get past building it while they
    run at the same time: overlap by construction, not by timing. Jobs that run one after
    another fail with TimeoutError after `timeout_s`.
    """

    def __init__(self, barrier_dir: str, parties: int, timeout_s: float = 120.0, length: int = 10) -> None:
        super().__init__(length)
        directory = Path(barrier_dir)
        (directory / str(os.getpid())).touch()
        deadline = time.monotonic() + timeout_s
        while (arrived := len(list(directory.iterdir()))) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"BarrierEnv: {arrived} of {parties} processes arrived within {timeout_s} s")
            time.sleep(0.05)


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


class CrashAtStepEnv(gym.Wrapper):
    """CartPole that raises at its `crash_at_step`-th step, only in the env first reset with seed `crash_seed`.

    Env runners seed their envs from the run's seed and their worker index, and a
    replacement runner draws other seeds: one chosen env of one runner fails once,
    at the same step in every run, so a run with a crash is as reproducible as one without.
    """

    def __init__(self, crash_seed: int = -1, crash_at_step: int = 0) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.crash_seed, self.crash_at_step = crash_seed, crash_at_step
        self.first_seed: int | None = None
        self.num_steps = 0

    def reset(self, *, seed=None, options=None):
        if self.first_seed is None:
            self.first_seed = seed
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.num_steps += 1
        if self.first_seed == self.crash_seed and self.num_steps == self.crash_at_step:
            raise RuntimeError("CrashAtStepEnv crashed on purpose")
        return self.env.step(action)


class NaNRewardEnv(gym.Env):
    """One endless episode (no terminal or truncated step, so every sampled row is a real step) whose reward turns
    NaN after its first `nan_from_step` steps: a loss that becomes non-finite at a known iteration."""

    def __init__(self, nan_from_step: int = 128) -> None:
        self.nan_from_step = nan_from_step
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, size=2).astype(np.float32), {}

    def step(self, action):
        self._t += 1
        reward = float("nan") if self._t > self.nan_from_step else float(action == 0)
        return self.np_random.uniform(-1, 1, size=2).astype(np.float32), reward, False, False, {}

"""Tiny envs with structured observations for tests/test_obs_spaces.py (importable as `structured_envs`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv


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


class CueAgentsEnv(ParallelEnv):
    """Two PettingZoo agents, each with a Dict observation (a Discrete cue and a float vector): reward 1 for the
    action that matches the agent's cue. Episodes last `length` steps."""

    metadata = {"name": "cue_agents_v0"}

    def __init__(self, length: int = 6) -> None:
        self.possible_agents = ["a_0", "a_1"]
        self.agents: list[str] = []
        self.length = length
        self._space = gym.spaces.Dict({"cue": gym.spaces.Discrete(2), "where": gym.spaces.Box(-1, 1, (2,), np.float32)})
        self._rng = np.random.default_rng(0)
        self._cues: dict[str, int] = {}
        self._t = 0

    def observation_space(self, agent: str) -> gym.Space:
        return self._space

    def action_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(2)

    def _obs(self) -> dict[str, dict[str, Any]]:
        self._cues = {a: int(self._rng.integers(2)) for a in self.agents}
        return {a: {"cue": c, "where": self._rng.uniform(-1, 1, 2).astype(np.float32)} for a, c in self._cues.items()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        rewards = {a: float(int(actions[a]) == self._cues[a]) for a in self.agents}
        self._t += 1
        done = self._t >= self.length
        obs = self._obs()
        if done:
            self.agents = []
        return obs, rewards, dict.fromkeys(rewards, done), dict.fromkeys(rewards, False), {a: {} for a in rewards}

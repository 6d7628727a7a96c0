"""PettingZoo ParallelEnvs for tests/test_multi_agent.py (importable from tests/ by the CLI and Ray's workers)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv


class StaggeredEnv(ParallelEnv):
    """`early` leaves (terminated) after 2 steps, `late` joins at step 2, `long` is truncated at step 5.

    Every observation is [step, agent index]; every live step rewards 1.
    """

    metadata = {"name": "staggered_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["early", "long", "late"]
        self.agents: list[str] = []
        self._t = 0

    def observation_space(self, agent: str) -> gym.Space:
        return gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def action_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(2)

    def _obs(self, agent: str) -> np.ndarray:
        return np.array([self._t, self.possible_agents.index(agent)], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self._t = 0
        self.agents = ["early", "long"]
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        assert set(actions) == set(self.agents), (actions, self.agents)
        self._t += 1
        acting = list(self.agents)
        terminated = {a: a == "early" and self._t == 2 for a in acting}
        truncated = {a: a != "early" and self._t == 5 for a in acting}
        self.agents = [a for a in acting if not (terminated[a] or truncated[a])]
        if self._t == 2:
            self.agents.append("late")
        obs = {a: self._obs(a) for a in set(acting) | set(self.agents)}
        return obs, {a: 1.0 for a in acting}, terminated, truncated, {a: {} for a in obs}


class MixedSpacesEnv(StaggeredEnv):
    """`late` sees 3 numbers, the others 2: they cannot share one module."""

    def observation_space(self, agent: str) -> gym.Space:
        return gym.spaces.Box(-np.inf, np.inf, (3 if agent == "late" else 2,), np.float32)


class PixelAgentsEnv(ParallelEnv):
    """Two agents that each see their own 8x8 uint8 frame (noise, channels first) and pick one of 3 actions; an
    agent scores 1 when its action matches its frame's first pixel mod 3. 6 steps an episode, then truncated."""

    metadata = {"name": "pixel_agents_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self._t = 0
        self._rng = np.random.default_rng(0)
        self._frames: dict[str, np.ndarray] = {}

    def observation_space(self, agent: str) -> gym.Space:
        return gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)

    def action_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(3)

    def _observe(self) -> dict[str, np.ndarray]:
        self._frames = {a: self._rng.integers(0, 256, (1, 8, 8), dtype=np.uint8) for a in self.agents}
        return {a: frame.copy() for a, frame in self._frames.items()}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t = 0
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        rewards = {a: float(int(actions[a]) == self._frames[a][0, 0, 0] % 3) for a in self.agents}
        self._t += 1
        done = self._t == 6
        obs = self._observe()
        if done:
            self.agents = []
        return obs, rewards, {a: False for a in obs}, {a: done for a in obs}, {a: {} for a in obs}

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

"""MultiCartPole: `num_agents` independent CartPole-v1 poles behind PettingZoo's ParallelEnv API.

rlrun's fast multi-agent test env (`env=multi_cartpole`), the counterpart of RLlib's
MultiAgentCartPole. Each agent balances its own pole and leaves the env when its
pole falls (terminated) or after `max_steps` steps (truncated); the episode ends
when every agent has left, so agents finish at different times and the runner
must mask them, never pad them into the loss.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from pettingzoo import ParallelEnv


class MultiCartPole(ParallelEnv):
    """Agents `agent_0` .. `agent_{n-1}`, each with CartPole-v1's spaces, dynamics and reward."""

    metadata = {"name": "multi_cartpole_v0", "render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, num_agents: int = 2, max_steps: int = 500, render_mode: str | None = None) -> None:
        if num_agents < 1:
            raise ValueError(f"num_agents must be >= 1 (got {num_agents})")
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.agents: list[str] = []
        self.max_steps = max_steps
        self.render_mode = render_mode
        # A list named `envs`, of plain gymnasium envs: rlrun.env.env_state captures it (exact resume).
        self.envs = [CartPoleEnv(render_mode=render_mode) for _ in self.possible_agents]
        self._steps = 0

    def _pole(self, agent: str) -> CartPoleEnv:
        return self.envs[self.possible_agents.index(agent)]

    def observation_space(self, agent: str) -> gym.Space:
        return self._pole(agent).observation_space

    def action_space(self, agent: str) -> gym.Space:
        return self._pole(agent).action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self._steps = 0
        obs = {}
        for i, agent in enumerate(self.agents):
            # One seed per pole, so the poles do not all start alike.
            obs[agent], _ = self._pole(agent).reset(seed=None if seed is None else seed * 1_000 + i)
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self._steps += 1
        obs, rewards, terminated, truncated = {}, {}, {}, {}
        for agent in self.agents:
            obs[agent], rewards[agent], terminated[agent], _, _ = self._pole(agent).step(int(actions[agent]))
            truncated[agent] = self._steps >= self.max_steps and not terminated[agent]
        self.agents = [a for a in self.agents if not (terminated[a] or truncated[a])]
        return obs, rewards, terminated, truncated, {a: {} for a in obs}

    def state(self) -> np.ndarray:
        """The global state: every pole's observation, agent by agent (what a central critic may see)."""
        return np.concatenate([np.asarray(self._pole(a).state, dtype=np.float32) for a in self.possible_agents])

    def render(self) -> np.ndarray | None:
        """The poles side by side."""
        frames = [self._pole(a).render() for a in self.possible_agents]
        return None if frames[0] is None else np.concatenate(frames, axis=1)

    def close(self) -> None:
        for pole in self.envs:
            pole.close()

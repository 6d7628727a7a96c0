"""A turn-based PettingZoo AEC game for tests/test_turn_based.py: small, exact and with a known winning policy.

CountingGame (a Nim race to `target`): players `first` and `second` take turns adding 1 (action 0) or 2
(action 1) to a shared count; whoever brings the count to `target` or beyond wins (+1, the other -1).
The winning policy moves to a count leaving `target - count` a multiple of 3, so with `target` 7 the
first player always wins by playing it (1 -> 4 -> 7). A game not decided after `max_moves` moves is
truncated (reward 0 for both). The observation is [count / target, 1 if the observer moves first].
All state is plain data (ints, lists and string-keyed dicts), so rlrun's env state can resume mid-game.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv

from rlrun.callbacks import Callback


class CountingGame(AECEnv):
    """PettingZoo AEC API: `agent_selection` moves, `last()` gives each agent the rewards since it moved."""

    metadata = {"name": "counting_game_v0", "is_parallelizable": False}

    def __init__(self, target: int = 7, max_moves: int = 100) -> None:
        super().__init__()
        self.target = target
        self.max_moves = max_moves
        self.possible_agents = ["first", "second"]
        self.agents: list[str] = []
        self.count = 0
        self.moves = 0

    def observation_space(self, agent: str) -> gym.Space:
        return gym.spaces.Box(0.0, 2.0, (2,), np.float32)

    def action_space(self, agent: str) -> gym.Space:
        return gym.spaces.Discrete(2)

    def observe(self, agent: str) -> np.ndarray:
        return np.array([self.count / self.target, float(agent == "first")], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.agents = list(self.possible_agents)
        self.count = 0
        self.moves = 0
        self.agent_selection = "first"
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos: dict[str, dict] = {a: {} for a in self.agents}

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        other = self.possible_agents[1 - self.possible_agents.index(agent)]
        self.count += int(action) + 1
        self.moves += 1
        self.rewards = dict.fromkeys(self.agents, 0.0)
        if self.count >= self.target:
            self.rewards[agent], self.rewards[other] = 1.0, -1.0
            self.terminations = dict.fromkeys(self.agents, True)
        elif self.moves >= self.max_moves:
            self.truncations = dict.fromkeys(self.agents, True)
        self._accumulate_rewards()
        self.agent_selection = other


class GameHooks(Callback):
    """Counts the episode hooks of a turn-based run (sums) and the winner of each game, from the last move's
    rewards that `on_episode_end` sees."""

    def on_episode_start(self, *, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("starts", 1, reduce="sum")

    def on_episode_step(self, *, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("moves", 1, reduce="sum")

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("ends", 1, reduce="sum")
        metrics_logger.log_value("first_won", float(episode.last_reward["first"] > 0), reduce="sum")

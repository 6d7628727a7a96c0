"""Structured observations of PettingZoo agents: each agent's non-Box observation packed into its own uint8 row.

The multi-agent counterpart of rlrun/env/packing.py: the multi-agent env runner, the policy mapping and the
learners then see a Box (a PackedSpace) per agent, as the single-agent path does. (A turn-based game packs in
`turn_based.TurnBasedEnv`; MAPPO's `Dict(obs=..., state=...)` is a module's input, built after this.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rlrun.core.packed_space import as_model_input, pack_space


class PackedParallelEnv(BaseParallelWrapper):
    """A ParallelEnv whose agents with a non-Box observation space get it packed (`observation_space(agent)` is
    then that agent's PackedSpace); agents that see a Box are left as they are."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._spaces = {agent: pack_space(env.observation_space(agent)) for agent in env.possible_agents}

    def observation_space(self, agent: str) -> gym.Space:
        return self._spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._pack(observations), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        observations, *rest = self.env.step(actions)
        return self._pack(observations), *rest

    def _pack(self, observations: dict[str, Any]) -> dict[str, Any]:
        return {agent: as_model_input(self._spaces[agent], obs) for agent, obs in observations.items()}


def pack_parallel_observations(env: Any) -> Any:
    """`env` with packed observations when some agent's space is not a Box; `env` as it is otherwise."""
    if all(isinstance(env.observation_space(agent), gym.spaces.Box) for agent in env.possible_agents):
        return env
    return PackedParallelEnv(env)

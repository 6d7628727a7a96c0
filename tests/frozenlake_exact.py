"""FrozenLake's greedy success probability, computed exactly (importable as `frozenlake_exact`).

A FrozenLake policy that succeeds with probability 0.73 reads anywhere in 0.70-0.76 on 1000 sampled episodes
(a standard error of 0.014), so a learning test that compares a sampled return with 0.7 fails by luck. The
env is small enough not to sample at all: its own transition table (`env.unwrapped.P`) and the TimeLimit of
its spec give the probability that a deterministic policy reaches the goal before time runs out, by policy
evaluation over (state, steps left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np


def success_probability(actions: Sequence[int], env_id: str = "FrozenLake-v1", **env_kwargs: Any) -> float:
    """The probability that playing `actions[state]` in every state reaches the goal within the episode's
    step limit (`max_episode_steps` of the env's spec, 100 for FrozenLake-v1's 4x4 map), from the env's own
    start distribution.

    Finite-horizon evaluation: `value[s]` with k steps left is the chance to reach the goal from `s` in at most
    k steps; a hole or the goal ends the episode (their rows of P say `terminated`), and reward 1 comes only
    on the goal, so the expected return with k steps left is that chance.
    """
    env = gym.make(env_id, **env_kwargs)
    try:
        lake = env.unwrapped
        transitions, start = lake.P, np.asarray(lake.initial_state_distrib, dtype=np.float64)
        horizon = env.spec.max_episode_steps
    finally:
        env.close()
    value = np.zeros(len(transitions))
    for _ in range(horizon):
        value = np.array([sum(p * (reward + (0.0 if terminated else value[nxt]))
                              for p, nxt, reward, terminated in transitions[s][int(actions[s])])
                          for s in range(len(transitions))])
    return float(start @ value)


def greedy_success_probability(compute_action: Callable[[int], Any], env_id: str = "FrozenLake-v1",
                               **env_kwargs: Any) -> float:
    """The exact success probability of a policy's greedy action in every state (e.g. `rlrun.load(run_dir)`'s
    `compute_action`, given FrozenLake's own integer observation)."""
    env = gym.make(env_id, **env_kwargs)
    n_states = env.observation_space.n
    env.close()
    return success_probability([int(compute_action(s)) for s in range(n_states)], env_id, **env_kwargs)

"""Tiny envs for tests/test_action_spaces.py and tests/test_action_masking.py (`action_envs:<Class>` with tests/
on the path): each has a known best policy, so a short run shows whether the algorithm learns the action space."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

EPISODE_LEN = 8


class _TargetEnv(gym.Env):
    """A random target per step, shown in the observation; reward = how much of the action matches it."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._new_target()
        return self._observation(), {}

    def step(self, action):
        reward = self._reward(np.asarray(action))
        self._t += 1
        self._new_target()
        return self._observation(), reward, self._t >= EPISODE_LEN, False, {}


class MultiDiscreteTargetEnv(_TargetEnv):
    """MultiDiscrete([3, 2]) actions; observation: the targets one-hot; reward 1 per sub-action that hits its target
    (random play scores 1/3 + 1/2 per step, the best policy 2)."""

    nvec = (3, 2)

    def __init__(self) -> None:
        self.action_space = gym.spaces.MultiDiscrete(self.nvec)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (sum(self.nvec),), np.float32)

    def _new_target(self) -> None:
        self.target = np.array([self.np_random.integers(n) for n in self.nvec])

    def _observation(self) -> np.ndarray:
        return np.concatenate([np.eye(n, dtype=np.float32)[t] for n, t in zip(self.nvec, self.target)])

    def _reward(self, action: np.ndarray) -> float:
        assert action.shape == (2,) and all(0 <= a < n for a, n in zip(action, self.nvec)), action
        return float((action == self.target).sum())


class MultiBinaryTargetEnv(_TargetEnv):
    """MultiBinary(4) actions; observation: 4 random bits; reward: the fraction of action bits equal to them
    (random play scores 0.5 per step, the best policy 1)."""

    def __init__(self) -> None:
        self.action_space = gym.spaces.MultiBinary(4)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)

    def _new_target(self) -> None:
        self.target = self.np_random.integers(0, 2, 4)

    def _observation(self) -> np.ndarray:
        return self.target.astype(np.float32)

    def _reward(self, action: np.ndarray) -> float:
        assert action.shape == (4,) and set(action.tolist()) <= {0, 1}, action
        return float((action == self.target).mean())


class ShiftedDiscreteEnv(MultiBinaryTargetEnv):
    """Discrete(3, start=1) actions, which the policies (acting in 0..n-1) cannot take: refused."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Discrete(3, start=1)


class MaskedEnv(gym.Env):
    """Dict observation {"obs": Box, "action_mask": MultiBinary(n)}, Discrete(n) actions.

    Each step a random half of the actions is legal; the observation says which one pays: reward 1 for the
    legal action `obs` points at, 0.1 for another legal one. An illegal action ends the episode with reward -1
    and counts in `illegal_actions` (a class attribute, so a test in this process can read it). The paying
    action is illegal now and then, so an unmasked policy that learned it would play illegal moves.
    """

    n = 6
    illegal_actions = 0

    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(self.n)
        self.observation_space = gym.spaces.Dict({
            "obs": gym.spaces.Box(0.0, 1.0, (self.n,), np.float32),
            "action_mask": gym.spaces.MultiBinary(self.n),
        })

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._new_state(), {}

    def _new_state(self) -> dict[str, np.ndarray]:
        self.mask = np.zeros(self.n, dtype=np.int8)
        self.mask[self.np_random.choice(self.n, self.n // 2, replace=False)] = 1
        self.best = int(self.np_random.integers(self.n))
        return {"obs": np.eye(self.n, dtype=np.float32)[self.best], "action_mask": self.mask.copy()}

    def step(self, action):
        action = int(action)
        self._t += 1
        if not self.mask[action]:
            type(self).illegal_actions += 1
            return self._new_state(), -1.0, True, False, {}
        reward = 1.0 if action == self.best else 0.1
        return self._new_state(), reward, self._t >= EPISODE_LEN, False, {}


class MaskedMultiDiscreteEnv(MaskedEnv):
    """MaskedEnv with MultiDiscrete([n, 2]) actions: the mask is the first sub-action's n entries then the second's
    2 (one of them legal at random); an illegal sub-action ends the episode with reward -1."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.MultiDiscrete([self.n, 2])
        self.observation_space = gym.spaces.Dict({
            "obs": gym.spaces.Box(0.0, 1.0, (self.n,), np.float32),
            "action_mask": gym.spaces.MultiBinary(self.n + 2),
        })

    def _new_state(self) -> dict[str, np.ndarray]:
        state = super()._new_state()
        second = np.eye(2, dtype=np.int8)[self.np_random.integers(2)]
        self.mask = np.concatenate([self.mask, second])
        return {**state, "action_mask": self.mask.copy()}

    def step(self, action):
        first, second = (int(a) for a in action)
        self._t += 1
        if not (self.mask[first] and self.mask[self.n + second]):
            type(self).illegal_actions += 1
            return self._new_state(), -1.0, True, False, {}
        reward = 1.0 if first == self.best else 0.1
        return self._new_state(), reward, self._t >= EPISODE_LEN, False, {}


class NoLegalActionEnv(MaskedEnv):
    """MaskedEnv whose third observation leaves no legal action: an env bug that rlrun names in one line."""

    def _new_state(self) -> dict[str, np.ndarray]:
        state = super()._new_state()
        if getattr(self, "_t", 0) >= 2:
            self.mask[:] = 0
            state["action_mask"] = self.mask.copy()
        return state


class WrongMaskSizeEnv(MaskedEnv):
    """A mask of 5 entries for 6 actions, which rlrun refuses before the run starts."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({**self.observation_space.spaces,
                                                  "action_mask": gym.spaces.MultiBinary(self.n - 1)})


class MaskedMultiBinaryEnv(MaskedEnv):
    """A mask beside MultiBinary actions, which have no logits per action to mask: refused."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.MultiBinary(self.n)


class MaskedAgentsEnv(ParallelEnv):
    """Two agents, each playing MaskedMultiDiscreteEnv's game on its own mask: the multi-agent env runner's case.
    An illegal sub-action ends the episode for both (reward -1 to the player) and counts in `illegal_actions`."""

    metadata = {"name": "masked_agents_v0"}
    illegal_actions = 0

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self._games = {agent: MaskedMultiDiscreteEnv() for agent in self.possible_agents}

    def observation_space(self, agent: str) -> gym.Space:
        return self._games[agent].observation_space

    def action_space(self, agent: str) -> gym.Space:
        return self._games[agent].action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        obs = {agent: game.reset(seed=None if seed is None else seed + i)[0]
               for i, (agent, game) in enumerate(self._games.items())}
        return obs, {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        steps = {agent: self._games[agent].step(action) for agent, action in actions.items()}
        illegal = sum(reward == -1.0 for _, reward, *_ in steps.values())
        type(self).illegal_actions += illegal
        over = bool(illegal) or any(terminated for _, _, terminated, *_ in steps.values())
        self.agents = [] if over else self.agents
        return ({agent: s[0] for agent, s in steps.items()}, {agent: s[1] for agent, s in steps.items()},
                {agent: over for agent in steps}, {agent: False for agent in steps}, {agent: {} for agent in steps})

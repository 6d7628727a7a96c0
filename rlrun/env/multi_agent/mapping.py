"""Which policy (RLModule) acts for which agent: `multi_agent.policies` and `multi_agent.policy_mapping`.

- `shared`: one module (`default_policy`) for every agent (parameter sharing);
- `independent`: one module per agent, named after the agent;
- a list of module ids plus `policy_mapping`, agent-id glob patterns to module ids
  (first match wins), e.g. `{"red_*": red, "*": blue}`.

Agents mapped to one module must have the same spaces: that module's network and
its one batched forward pass serve them all.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from rlrun.core.columns import DEFAULT_MODULE_ID

SHARED, INDEPENDENT = "shared", "independent"


class MappingError(ValueError):
    """A mapping that leaves an agent without a module, names an unknown module, or mixes spaces."""


class PolicyMapping:
    """Agent id -> module id for one env's agents, and the spaces of each module."""

    def __init__(self, policies: str | Sequence[str], policy_mapping: Mapping[str, str] | None,
                 possible_agents: Sequence[str], env: Any, central_value: bool = False) -> None:
        self.agent_to_module = _map_agents(policies, policy_mapping or {}, possible_agents)
        self.modules: list[str] = list(dict.fromkeys(self.agent_to_module.values()))
        self.agents_of = {m: [a for a in possible_agents if self.agent_to_module[a] == m] for m in self.modules}
        self.spaces: dict[str, tuple[gym.Space, gym.Space]] = {}
        for module, agents in self.agents_of.items():
            spaces = {a: (env.observation_space(a), env.action_space(a)) for a in agents}
            first = spaces[agents[0]]
            if any(s != first for s in spaces.values()):
                listed = "; ".join(f"{a}: obs {o}, action {act}" for a, (o, act) in spaces.items())
                raise MappingError(f"agents mapped to module '{module}' have different spaces ({listed}); "
                                   "map them to different policies with multi_agent.policy_mapping")
            self.spaces[module] = first
        # A central value function's input: the env's global state, or every agent's observation side by side.
        self.state_space: gym.spaces.Box | None = None
        if central_value:
            self.state_space = global_state_space(env, possible_agents)
            self.spaces = {m: (gym.spaces.Dict({"obs": obs, "state": self.state_space}), act)
                           for m, (obs, act) in self.spaces.items()}

    def observation_spaces(self) -> gym.spaces.Dict:
        """Module id -> observation space (what the learners build their modules from)."""
        return gym.spaces.Dict({m: s[0] for m, s in self.spaces.items()})

    def action_spaces(self) -> gym.spaces.Dict:
        return gym.spaces.Dict({m: s[1] for m, s in self.spaces.items()})


@dataclasses.dataclass(frozen=True)
class PolicyMappingSpec:
    """The `multi_agent.*` keys a PolicyMapping is built from, once an env tells its agents (`build`).

    Plain data, so a multi-agent env runner (a Ray actor too) maps its env copies' agents as the driver does.
    """

    policies: str | tuple[str, ...] = SHARED
    policy_mapping: Mapping[str, str] = dataclasses.field(default_factory=dict)
    central_value: bool = False

    def build(self, env: Any) -> PolicyMapping:
        """Agent -> module of the ParallelEnv `env`; MappingError names what does not fit."""
        return PolicyMapping(self.policies, self.policy_mapping, env.possible_agents, env,
                             central_value=self.central_value)


def has_state(env: Any, seed: int = 0) -> bool:
    """Whether a PettingZoo env implements `state()` (the base class raises NotImplementedError); resets `env`."""
    env.reset(seed=seed)
    try:
        env.state()
    except NotImplementedError:
        return False
    return True


def global_state_space(env: Any, agents: Sequence[str]) -> gym.spaces.Box:
    """The env's `state_space` when it has a `state()`, else a Box of all agents' flat observations (uint8 if
    theirs all are)."""
    if has_state(env):
        shape = np.shape(env.state())
        return gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
    spaces = [env.observation_space(a) for a in agents]
    size = sum(int(np.prod(space.shape)) for space in spaces)
    if all(space.dtype == np.uint8 for space in spaces):  # pixels: uint8 to the learner, scaled in the model
        return gym.spaces.Box(0, 255, (size,), np.uint8)
    return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)


def _map_agents(policies: str | Sequence[str], patterns: Mapping[str, str],
                agents: Sequence[str]) -> dict[str, str]:
    if policies == SHARED:
        return {a: DEFAULT_MODULE_ID for a in agents}
    if policies == INDEPENDENT:
        return {a: a for a in agents}
    if isinstance(policies, str) or not policies:
        raise MappingError(f"multi_agent.policies must be {SHARED}, {INDEPENDENT} or a list of policy ids "
                           f"(got {policies!r})")
    unknown = sorted(set(patterns.values()) - set(policies))
    if unknown:
        raise MappingError(f"multi_agent.policy_mapping maps to {unknown}, which multi_agent.policies "
                           f"{list(policies)} does not list")
    mapping = {}
    for agent in agents:
        module = next((m for pattern, m in patterns.items() if fnmatch.fnmatchcase(agent, pattern)), None)
        if module is None:
            raise MappingError(f"agent '{agent}' matches no pattern of multi_agent.policy_mapping "
                               f"{dict(patterns)}; add one (e.g. '*': {policies[0]})")
        mapping[agent] = module
    return mapping


class ModuleSpaces(NamedTuple):
    """Module id -> space, as `gym.spaces.Dict`s: what a multi-agent runner tells the learners to build."""

    observation_space: gym.spaces.Dict
    action_space: gym.spaces.Dict

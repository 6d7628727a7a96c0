"""RLModuleSpec (RLlib's name): which RLModule class to build, with which model keys.

Env runners and learners build their modules from this spec alone, never from the algorithm's config, so
both can be built (in a Ray actor, in `rlrun-eval`, in a test) from plain, picklable data: the class (by
reference) and the `model` keys. An algorithm whose module needs more than the `model` keys (DQN's
`dueling`, SAC's `initial_alpha`) folds them into `model_config` when it builds the spec
(`AlgorithmConfig.get_rl_module_spec`). A user's `model.module_class` in those keys takes the place of the
algorithm's class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlrun.core.rl_module.rl_module import RLModule


@dataclasses.dataclass(frozen=True)
class RLModuleSpec:
    """An RLModule class and its model config; `build` gives one module for given spaces."""

    module_class: type[RLModule]
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self, observation_space: gym.Space, action_space: gym.Space) -> RLModule:
        """A new module (fresh weights from torch's global RNG) for these spaces."""
        return self.resolved_class()(observation_space, action_space, dict(self.model_config))

    def resolved_class(self) -> type[RLModule]:
        """The class `build` builds: the user's `model.module_class` (imported by name, so a Ray worker or
        `rlrun-eval` finds it as the driver did) in place of the algorithm's own `module_class`."""
        from rlrun.core.rl_module.custom import user_module_class

        return user_module_class(self.model_config) or self.module_class

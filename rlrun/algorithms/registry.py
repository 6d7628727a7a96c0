"""Algorithm name (the `algo=` choice) -> its config class and its schema. Adding an algorithm adds a line to each.

The schemas are apart because every `rlrun` command registers all of them before Hydra composes a config,
while an algorithm's config class imports its learner, modules and torch: only a run needs those.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gymnasium as gym

    from rlrun.algorithms.algorithm_config import AlgorithmConfig
    from rlrun.config.schema import AlgoSchema

ALGORITHMS: dict[str, str] = {
    "ppo": "rlrun.algorithms.ppo:PPOConfig",
    "dqn": "rlrun.algorithms.dqn:DQNConfig",
    "sac": "rlrun.algorithms.sac:SACConfig",
    "td3": "rlrun.algorithms.td3:TD3Config",
    "impala": "rlrun.algorithms.impala:IMPALAConfig",
    "appo": "rlrun.algorithms.appo:APPOConfig",
    "bc": "rlrun.algorithms.bc:BCConfig",
    "marwil": "rlrun.algorithms.marwil:MARWILConfig",
}

# The `algo=<name>` keys: modules that import no torch (a test checks each is its config class's `schema`).
SCHEMAS: dict[str, str] = {
    "ppo": "rlrun.algorithms.ppo.schema:PPOSchema",
    "dqn": "rlrun.algorithms.dqn.schema:DQNSchema",
    "sac": "rlrun.algorithms.sac.schema:SACSchema",
    "td3": "rlrun.algorithms.td3.schema:TD3Schema",
    "impala": "rlrun.algorithms.impala.schema:IMPALASchema",
    "appo": "rlrun.algorithms.appo.schema:APPOSchema",
    "bc": "rlrun.algorithms.bc.schema:BCSchema",
    "marwil": "rlrun.algorithms.marwil.schema:MARWILSchema",
}


def _load(path: str) -> type:
    """The class a `module:Class` path of these tables names."""
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def get_algorithm_config_class(name: str) -> type[AlgorithmConfig]:
    if name not in ALGORITHMS:
        from rlrun.config.errors import ConfigError

        raise ConfigError(f"unknown algorithm '{name}'; available: {sorted(ALGORITHMS)}")
    return _load(ALGORITHMS[name])


def algorithm_schemas() -> dict[str, type[AlgoSchema]]:
    return {name: _load(SCHEMAS[name]) for name in ALGORITHMS}


def algorithms_taking(action_space: gym.Space) -> list[str]:
    """The algorithms that train on `action_space`, for a refusal that says where to go instead."""
    return [name for name in ALGORITHMS
            if isinstance(action_space, get_algorithm_config_class(name).supported_action_spaces)]

"""Algorithm name (the `algo=` choice) -> its package. Adding an algorithm adds one line here."""

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
    "impala": "rlrun.algorithms.impala:IMPALAConfig",
    "appo": "rlrun.algorithms.appo:APPOConfig",
    "bc": "rlrun.algorithms.bc:BCConfig",
    "marwil": "rlrun.algorithms.marwil:MARWILConfig",
}


def get_algorithm_config_class(name: str) -> type[AlgorithmConfig]:
    if name not in ALGORITHMS:
        from rlrun.config.errors import ConfigError

        raise ConfigError(f"unknown algorithm '{name}'; available: {sorted(ALGORITHMS)}")
    module_name, _, attr = ALGORITHMS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def algorithm_schemas() -> dict[str, type[AlgoSchema]]:
    return {name: get_algorithm_config_class(name).schema for name in ALGORITHMS}


def algorithms_taking(action_space: gym.Space) -> list[str]:
    """The algorithms that train on `action_space`, for a refusal that says where to go instead."""
    return [name for name in ALGORITHMS
            if isinstance(action_space, get_algorithm_config_class(name).supported_action_spaces)]

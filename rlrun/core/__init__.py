"""Core building blocks: column names, RLModules, Learners."""

from rlrun.core.columns import (
    COMPONENT_LEARNER_VARS,
    COMPONENT_OPTIMIZER,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
    Columns,
)

__all__ = [
    "COMPONENT_LEARNER_VARS",
    "COMPONENT_OPTIMIZER",
    "COMPONENT_RL_MODULE",
    "DEFAULT_MODULE_ID",
    "Columns",
]

"""DQN: `DQNConfig` (builder), `DQN` (training step), `DQNTorchLearner` (loss), `DQNModule` (Q networks)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "DQN": "rlrun.algorithms.dqn.dqn",
    "DQNConfig": "rlrun.algorithms.dqn.dqn",
    "DQNModule": "rlrun.algorithms.dqn.dqn_module",
    "DQNSchema": "rlrun.algorithms.dqn.schema",
    "DQNTorchLearner": "rlrun.algorithms.dqn.dqn_learner",
}

__all__ = ["DQN", "DQNConfig", "DQNModule", "DQNSchema", "DQNTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

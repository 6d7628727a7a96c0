"""DQN: `DQNConfig` (builder), `DQN` (training step), `DQNTorchLearner` (loss), `DQNModule` (Q networks)."""

from rlrun.algorithms.dqn.dqn import DQN, DQNConfig, DQNSchema
from rlrun.algorithms.dqn.dqn_learner import DQNTorchLearner
from rlrun.algorithms.dqn.dqn_module import DQNModule

__all__ = ["DQN", "DQNConfig", "DQNModule", "DQNSchema", "DQNTorchLearner"]

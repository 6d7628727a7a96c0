"""PPO: `PPOConfig` (builder), `PPO` (training step), `PPOTorchLearner` (loss)."""

from rlrun.algorithms.ppo.ppo import PPO, PPOConfig, PPOSchema
from rlrun.algorithms.ppo.ppo_learner import PPOTorchLearner

__all__ = ["PPO", "PPOConfig", "PPOSchema", "PPOTorchLearner"]

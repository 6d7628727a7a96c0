"""PPO: `PPOConfig` (builder), `PPO` (training step), `PPOTorchLearner` (loss)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "PPO": "rlrun.algorithms.ppo.ppo",
    "PPOConfig": "rlrun.algorithms.ppo.ppo",
    "PPOSchema": "rlrun.algorithms.ppo.schema",
    "PPOTorchLearner": "rlrun.algorithms.ppo.ppo_learner",
}

__all__ = ["PPO", "PPOConfig", "PPOSchema", "PPOTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

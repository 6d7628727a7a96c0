"""Behaviour cloning: `BCConfig` (builder), `BC` (training step), `BCTorchLearner` (loss)."""

from rlrun.algorithms.bc.bc import BC, BCConfig, BCSchema
from rlrun.algorithms.bc.bc_learner import BCTorchLearner

__all__ = ["BC", "BCConfig", "BCSchema", "BCTorchLearner"]

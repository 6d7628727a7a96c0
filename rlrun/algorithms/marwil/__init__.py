"""MARWIL: `MARWILConfig` (builder), `MARWIL` (training step), `MARWILTorchLearner` (loss)."""

from rlrun.algorithms.marwil.marwil import MARWIL, MARWILConfig, MARWILSchema
from rlrun.algorithms.marwil.marwil_learner import MARWILTorchLearner

__all__ = ["MARWIL", "MARWILConfig", "MARWILSchema", "MARWILTorchLearner"]

"""IMPALA: `IMPALAConfig` (builder), `IMPALA` (asynchronous training step), `IMPALATorchLearner` (V-trace loss)."""

from rlrun.algorithms.impala.impala import IMPALA, IMPALAConfig, IMPALASchema
from rlrun.algorithms.impala.impala_learner import IMPALATorchLearner

__all__ = ["IMPALA", "IMPALAConfig", "IMPALASchema", "IMPALATorchLearner"]

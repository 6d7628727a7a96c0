"""APPO: `APPOConfig` (builder), `APPO` (training step), `APPOTorchLearner` (clipped surrogate on V-trace)."""

from rlrun.algorithms.appo.appo import APPO, APPOConfig, APPOSchema
from rlrun.algorithms.appo.appo_learner import APPOTorchLearner

__all__ = ["APPO", "APPOConfig", "APPOSchema", "APPOTorchLearner"]

"""SAC: `SACConfig` (builder), `SAC` (training step), `SACTorchLearner` (losses), `SACModule` (networks)."""

from rlrun.algorithms.sac.sac import SAC, SACConfig, SACSchema
from rlrun.algorithms.sac.sac_learner import SACTorchLearner
from rlrun.algorithms.sac.sac_module import SACModule, TanhGaussian

__all__ = ["SAC", "SACConfig", "SACModule", "SACSchema", "SACTorchLearner", "TanhGaussian"]

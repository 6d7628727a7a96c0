"""What every offline algorithm shares: the dataset-reading learner and the training step without sampling."""

from rlrun.algorithms.offline.offline import OfflineAlgorithm, OfflineAlgoSchema, OfflineConfig
from rlrun.algorithms.offline.offline_learner import OfflineTorchLearner

__all__ = ["OfflineAlgoSchema", "OfflineAlgorithm", "OfflineConfig", "OfflineTorchLearner"]

"""What every offline algorithm shares: the dataset-reading learner and the training step without sampling."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "OfflineAlgoSchema": "rlrun.algorithms.offline.schema",
    "OfflineAlgorithm": "rlrun.algorithms.offline.offline",
    "OfflineConfig": "rlrun.algorithms.offline.offline",
    "OfflineTorchLearner": "rlrun.algorithms.offline.offline_learner",
}

__all__ = ["OfflineAlgoSchema", "OfflineAlgorithm", "OfflineConfig", "OfflineTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

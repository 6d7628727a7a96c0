"""MARWIL: `MARWILConfig` (builder), `MARWIL` (training step), `MARWILTorchLearner` (loss)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "MARWIL": "rlrun.algorithms.marwil.marwil",
    "MARWILConfig": "rlrun.algorithms.marwil.marwil",
    "MARWILSchema": "rlrun.algorithms.marwil.schema",
    "MARWILTorchLearner": "rlrun.algorithms.marwil.marwil_learner",
}

__all__ = ["MARWIL", "MARWILConfig", "MARWILSchema", "MARWILTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

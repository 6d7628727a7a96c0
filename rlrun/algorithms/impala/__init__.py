"""IMPALA: `IMPALAConfig` (builder), `IMPALA` (asynchronous training step), `IMPALATorchLearner` (V-trace loss)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "IMPALA": "rlrun.algorithms.impala.impala",
    "IMPALAConfig": "rlrun.algorithms.impala.impala",
    "IMPALASchema": "rlrun.algorithms.impala.schema",
    "IMPALATorchLearner": "rlrun.algorithms.impala.impala_learner",
}

__all__ = ["IMPALA", "IMPALAConfig", "IMPALASchema", "IMPALATorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

"""APPO: `APPOConfig` (builder), `APPO` (training step), `APPOTorchLearner` (clipped surrogate on V-trace)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "APPO": "rlrun.algorithms.appo.appo",
    "APPOConfig": "rlrun.algorithms.appo.appo",
    "APPOSchema": "rlrun.algorithms.appo.schema",
    "APPOTorchLearner": "rlrun.algorithms.appo.appo_learner",
}

__all__ = ["APPO", "APPOConfig", "APPOSchema", "APPOTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

"""Behaviour cloning: `BCConfig` (builder), `BC` (training step), `BCTorchLearner` (loss)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "BC": "rlrun.algorithms.bc.bc",
    "BCConfig": "rlrun.algorithms.bc.bc",
    "BCSchema": "rlrun.algorithms.bc.schema",
    "BCTorchLearner": "rlrun.algorithms.bc.bc_learner",
}

__all__ = ["BC", "BCConfig", "BCSchema", "BCTorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

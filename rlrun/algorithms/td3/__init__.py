"""TD3 (and DDPG as its configuration): `TD3Config` (builder), `TD3` (training step), `TD3TorchLearner` (losses),
`TD3Module` (networks)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "TD3": "rlrun.algorithms.td3.td3",
    "TD3Config": "rlrun.algorithms.td3.td3",
    "TD3Module": "rlrun.algorithms.td3.td3_module",
    "TD3Schema": "rlrun.algorithms.td3.schema",
    "TD3TorchLearner": "rlrun.algorithms.td3.td3_learner",
}

__all__ = ["TD3", "TD3Config", "TD3Module", "TD3Schema", "TD3TorchLearner"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

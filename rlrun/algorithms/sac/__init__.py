"""SAC: `SACConfig` (builder), `SAC` (training step), `SACTorchLearner` (losses), `SACModule` (networks)."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "SAC": "rlrun.algorithms.sac.sac",
    "SACConfig": "rlrun.algorithms.sac.sac",
    "SACModule": "rlrun.algorithms.sac.sac_module",
    "SACSchema": "rlrun.algorithms.sac.schema",
    "SACTorchLearner": "rlrun.algorithms.sac.sac_learner",
    "TanhGaussian": "rlrun.algorithms.sac.sac_module",
}

__all__ = ["SAC", "SACConfig", "SACModule", "SACSchema", "SACTorchLearner", "TanhGaussian"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

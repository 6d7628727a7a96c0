"""What every replay-buffer algorithm shares: the schema keys, the training step, the target-network learner."""

from typing import Any

from rlrun.lazy import lazy_attribute

# Where each name lives; `schema` is light (imported at every start-up), the others import torch.
_EXPORTS = {
    "OffPolicyAlgorithm": "rlrun.algorithms.off_policy.off_policy",
    "OffPolicyConfig": "rlrun.algorithms.off_policy.off_policy",
    "OffPolicySchema": "rlrun.algorithms.off_policy.schema",
    "OffPolicyTorchLearner": "rlrun.algorithms.off_policy.off_policy_learner",
    "ReplayBufferSchema": "rlrun.algorithms.off_policy.schema",
}

__all__ = ["OffPolicyAlgorithm", "OffPolicyConfig", "OffPolicySchema", "OffPolicyTorchLearner", "ReplayBufferSchema"]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _EXPORTS, name)

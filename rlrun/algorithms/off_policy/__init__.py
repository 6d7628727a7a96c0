"""What every replay-buffer algorithm shares: the schema keys, the training step, the target-network learner."""

from rlrun.algorithms.off_policy.off_policy import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    OffPolicySchema,
    ReplayBufferSchema,
)
from rlrun.algorithms.off_policy.off_policy_learner import OffPolicyTorchLearner

__all__ = ["OffPolicyAlgorithm", "OffPolicyConfig", "OffPolicySchema", "OffPolicyTorchLearner", "ReplayBufferSchema"]

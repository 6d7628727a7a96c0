"""The BC loss: the negative log-likelihood of the dataset's actions under the policy."""

from __future__ import annotations

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.offline import OfflineTorchLearner
from rlrun.core.columns import Columns

TensorDict = dict[str, torch.Tensor]


class BCTorchLearner(OfflineTorchLearner):
    """Maximum likelihood of `actions` given `obs`, for discrete and continuous action spaces alike."""

    def action_logp(self, module_id: str, batch: TensorDict, fwd_out: TensorDict) -> torch.Tensor:
        """log pi(a_t | s_t) of each row's dataset action."""
        dist_cls = self.module[module_id].get_train_action_dist_cls()
        return dist_cls.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS]).logp(batch[Columns.ACTIONS])

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        policy_loss = -self.action_logp(module_id, batch, fwd_out).mean()
        self.log_metrics(policy_loss=policy_loss)
        return policy_loss

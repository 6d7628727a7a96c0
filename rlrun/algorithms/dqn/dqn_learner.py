"""The DQN loss: (double) Q-learning with n-step targets, a Huber loss and importance weights.

Target-network updates and the per-row TD errors for the priorities come
from `OffPolicyTorchLearner`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.dqn.dqn_module import QF_PREDS
from rlrun.algorithms.off_policy import OffPolicyTorchLearner
from rlrun.core.columns import Columns

TensorDict = dict[str, torch.Tensor]


class DQNTorchLearner(OffPolicyTorchLearner):
    """DQN on the Learner hooks; the module is a `DQNModule`."""

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        module = self.module[module_id]
        with torch.no_grad():
            next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
            q_target_next = module.forward_target(next_batch)
            # Double Q: the online network picks the next action, the target network values it.
            # Both choose among the next observation's legal actions (their Q-values masked).
            chooser = module.forward_inference(next_batch)[Columns.ACTION_DIST_INPUTS] if config.double_q \
                else module.masked(q_target_next, batch[Columns.NEXT_OBS])
            q_next = q_target_next.gather(-1, chooser.argmax(-1, keepdim=True)).squeeze(-1)
            discount = config.gamma ** batch[Columns.N_STEP] * (1.0 - batch[Columns.TERMINATEDS].float())
            td_target = batch[Columns.REWARDS] + discount * q_next
        q_all = fwd_out[QF_PREDS]
        q = q_all.gather(-1, batch[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        td_error = q - td_target
        loss = (batch[Columns.WEIGHTS] * F.huber_loss(q, td_target, reduction="none")).mean()

        self.record_td_errors(module_id, batch, td_error)
        self.log_metrics(qf_loss=loss, qf_mean=q.mean(), qf_max=q_all.max(), qf_min=q_all.min(),
                         td_error_mean=td_error.abs().mean())
        return loss

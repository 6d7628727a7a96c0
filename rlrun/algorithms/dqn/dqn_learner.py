"""The DQN loss: (double) Q-learning with n-step targets, a Huber loss and importance weights.

Besides the loss, the learner updates the target network (polyak with `tau`,
1.0 = hard copy) every `target_network_update_freq` env steps after the
gradient step, and returns each row's TD error with the update results
(`td_error`, in the batch's row order) so the algorithm can set priorities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.dqn.dqn_module import QF_PREDS
from rlrun.core.columns import Columns
from rlrun.core.learner import TorchLearner, distributed

TensorDict = dict[str, torch.Tensor]
# Each training row's position in the update's batch, so TD errors go back in the order rows were sampled.
ROW_INDEX = "row_index"
TD_ERROR = "td_error"
LAST_TARGET_UPDATE = "last_target_update_ts"


class DQNTorchLearner(TorchLearner):
    """DQN on the Learner hooks; the module is a `DQNModule`."""

    def build(self) -> None:
        super().build()
        for module_id in self.module:
            self.learner_vars[module_id][LAST_TARGET_UPDATE] = 0
        self._td_sums: TensorDict = {}
        self._td_counts: TensorDict = {}

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        rows = super().build_train_batch(module_id, batch)
        num_rows = len(rows[Columns.REWARDS])
        rows[ROW_INDEX] = torch.arange(num_rows, device=self.device)
        self._td_sums[module_id] = torch.zeros(num_rows, device=self.device)
        self._td_counts[module_id] = torch.zeros(num_rows, device=self.device)
        return rows

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        module = self.module[module_id]
        with torch.no_grad():
            next_batch = {Columns.OBS: batch[Columns.NEXT_OBS]}
            q_target_next = module.forward_target(next_batch)
            # Double Q: the online network picks the next action, the target network values it.
            chooser = module.forward_inference(next_batch)[Columns.ACTION_DIST_INPUTS] if config.double_q \
                else q_target_next
            q_next = q_target_next.gather(-1, chooser.argmax(-1, keepdim=True)).squeeze(-1)
            discount = config.gamma ** batch[Columns.N_STEP] * (1.0 - batch[Columns.TERMINATEDS].float())
            td_target = batch[Columns.REWARDS] + discount * q_next
        q_all = fwd_out[QF_PREDS]
        q = q_all.gather(-1, batch[Columns.ACTIONS].long().unsqueeze(-1)).squeeze(-1)
        td_error = q - td_target
        loss = (batch[Columns.WEIGHTS] * F.huber_loss(q, td_target, reduction="none")).mean()

        self._record_td_errors(module_id, batch[ROW_INDEX], td_error.detach())
        self.log_metrics(qf_loss=loss, qf_mean=q.mean(), qf_max=q_all.max(), qf_min=q_all.min(),
                         td_error_mean=td_error.abs().mean())
        return loss

    def _record_td_errors(self, module_id: str, rows: torch.Tensor, td_error: torch.Tensor) -> None:
        # Rows seen in several epochs get the mean of their TD errors (the same on every DDP rank layout).
        self._td_sums[module_id].index_add_(0, rows, td_error)
        self._td_counts[module_id].index_add_(0, rows, torch.ones_like(td_error))

    def update(self, *, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None = None) -> dict[str, Any]:
        """The base update, plus each module's per-row TD errors (numpy, batch order) under `td_error`."""
        results = super().update(batch=batch, timesteps=timesteps)
        for module_id, result in results.items():
            sums, counts = self._td_sums[module_id], self._td_counts[module_id]
            if self._world_size > 1:  # each rank trained on its own rows
                sums, counts = distributed.all_reduce_sum(sums), distributed.all_reduce_sum(counts)
            result[TD_ERROR] = (sums / counts.clamp(min=1)).cpu().numpy()
        return results

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Every `target_network_update_freq` env steps: target <- tau * online + (1 - tau) * target."""
        super().after_gradient_based_update(timesteps=timesteps)
        now = timesteps.get("num_env_steps_sampled_lifetime", 0)
        for module_id in self.module:
            if now - self.learner_vars[module_id][LAST_TARGET_UPDATE] >= self.config.target_network_update_freq:
                self.update_target_networks(module_id, self.config.tau)
                self.learner_vars[module_id][LAST_TARGET_UPDATE] = now

    def update_target_networks(self, module_id: str, tau: float) -> None:
        """Polyak-average every (online, target) pair of the module; tau = 1 copies."""
        with torch.no_grad():
            for online, target in self.module[module_id].get_target_network_pairs():
                for p, tp in zip(online.parameters(), target.parameters()):
                    tp.lerp_(p, tau)

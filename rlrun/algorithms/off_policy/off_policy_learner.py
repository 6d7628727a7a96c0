"""The learner side of every replay-buffer algorithm: target networks and per-row TD errors.

After each gradient-based update the target networks move towards the online
ones (polyak with `tau`, 1.0 = hard copy) every `target_network_update_freq`
env steps, or after every gradient step when that is 0; the module lists its
(online, target) pairs with `get_target_network_pairs()`, as RLlib's
target-network API does. A loss reports each row's TD error with
`record_td_errors`; `update` returns them (`td_error`, numpy, in the batch's
row order, the mean over epochs, gathered over DDP ranks) so the algorithm can
set replay priorities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlrun.algorithms.off_policy.off_policy import TD_ERROR
from rlrun.core.columns import Columns
from rlrun.core.learner import TorchLearner, distributed

TensorDict = dict[str, torch.Tensor]
# Each training row's position in the update's batch, so TD errors go back in the order rows were sampled.
ROW_INDEX = "row_index"
LAST_TARGET_UPDATE = "last_target_update_ts"


class OffPolicyTorchLearner(TorchLearner):
    """A TorchLearner whose modules have target networks and whose loss reports TD errors."""

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

    def record_td_errors(self, module_id: str, batch: TensorDict, td_error: torch.Tensor) -> None:
        """Note the minibatch's TD errors; rows seen in several epochs get their mean (on any DDP layout)."""
        rows = batch[ROW_INDEX]
        self._td_sums[module_id].index_add_(0, rows, td_error.detach())
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

    def after_gradient_step(self, *, module_id: str) -> None:
        """`target_network_update_freq: 0`: the targets follow every gradient step (SAC's polyak averaging) that
        `targets_follow`."""
        super().after_gradient_step(module_id=module_id)
        if self.config.target_network_update_freq == 0 and self.targets_follow(module_id):
            self.update_target_networks(module_id, self.config.tau)

    def targets_follow(self, module_id: str) -> bool:
        """Whether the targets follow the gradient step just taken: every one here; TD3's only its delayed policy
        steps."""
        return True

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Every `target_network_update_freq` env steps: target <- tau * online + (1 - tau) * target."""
        super().after_gradient_based_update(timesteps=timesteps)
        now = timesteps.get("num_env_steps_sampled_lifetime", 0)
        freq = self.config.target_network_update_freq
        for module_id in self.module:
            if now - self.learner_vars[module_id][LAST_TARGET_UPDATE] >= freq:
                if freq:  # 0: the targets already followed every gradient step
                    self.update_target_networks(module_id, self.config.tau)
                self.learner_vars[module_id][LAST_TARGET_UPDATE] = now

    def update_target_networks(self, module_id: str, tau: float) -> None:
        """Polyak-average every (online, target) pair of the module; tau = 1 copies."""
        pairs = self.module[module_id].get_target_network_pairs()
        with torch.no_grad():  # one fused call for all tensors: SAC does this after every gradient step
            torch._foreach_lerp_([p for _, target in pairs for p in target.parameters()],
                                 [p for online, _ in pairs for p in online.parameters()], tau)

"""The PPO loss: clipped surrogate, (clipped) value loss, entropy bonus, adaptive KL penalty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.core.columns import Columns
from rlrun.core.learner import TorchLearner
from rlrun.data.advantages import compute_gae

TensorDict = dict[str, torch.Tensor]


class PPOTorchLearner(TorchLearner):
    """PPO on the Learner hooks; advantages are computed here (GAE on the learner side)."""

    def build(self) -> None:
        super().build()
        for module_id in self.module:
            self.learner_vars[module_id]["curr_kl_coeff"] = float(self.config.kl_coeff)

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        if Columns.ADVANTAGES not in batch:
            batch = {**batch, **self._gae(module_id, batch)}
        rows = super().build_train_batch(module_id, batch)
        if self.config.normalize_advantages:
            adv = rows[Columns.ADVANTAGES]
            # Sequences (a recurrent module) hold padding and autoreset steps: the statistics are the trained steps'.
            trained = adv[rows[Columns.LOSS_MASK]] if self.module[module_id].is_stateful() else adv
            rows[Columns.ADVANTAGES] = (adv - trained.mean()) / (trained.std() + 1e-8)
        return rows

    def _gae(self, module_id: str, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Values of every observation plus the bootstrap one, then GAE over the [T, B] batch."""
        values, bootstrap = self.fragment_values(module_id, batch)
        next_values = np.concatenate([values[1:], bootstrap[None]])
        advantages, targets = compute_gae(
            np.asarray(batch[Columns.REWARDS]), values, next_values,
            np.asarray(batch[Columns.TERMINATEDS]), np.asarray(batch[Columns.TRUNCATEDS]),
            self.config.gamma, self.config.lambda_,
        )
        return {Columns.VF_PREDS: values, Columns.ADVANTAGES: advantages, Columns.VALUE_TARGETS: targets}

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        dist_cls = self.module[module_id].get_train_action_dist_cls()
        curr_dist = dist_cls.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        prev_dist = dist_cls.from_logits(batch[Columns.ACTION_DIST_INPUTS])
        advantages = batch[Columns.ADVANTAGES]

        ratio = torch.exp(curr_dist.logp(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP])
        surrogate = torch.min(
            advantages * ratio,
            advantages * torch.clamp(ratio, 1 - config.clip_param, 1 + config.clip_param),
        )
        vf_error = (fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]).pow(2)
        vf_loss = vf_error.clamp(max=config.vf_clip_param) if config.vf_clip_param else vf_error
        entropy = curr_dist.entropy()
        kl = prev_dist.kl(curr_dist).mean()

        total = -surrogate.mean() + config.vf_loss_coeff * vf_loss.mean() - config.entropy_coeff * entropy.mean()
        if config.use_kl_loss:
            total = total + self.learner_vars[module_id]["curr_kl_coeff"] * kl

        targets = batch[Columns.VALUE_TARGETS]
        self.log_metrics(
            policy_loss=-surrogate.mean(),
            vf_loss=vf_loss.mean(),
            entropy=entropy.mean(),
            mean_kl_loss=kl,
            vf_explained_var=1 - (targets - fwd_out[Columns.VF_PREDS]).var() / (targets.var() + 1e-8),
        )
        return total

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Adapt the KL coefficient toward `kl_target` (RLlib's rule: x1.5 above 2x, x0.5 below 0.5x)."""
        super().after_gradient_based_update(timesteps=timesteps)
        if not self.config.use_kl_loss:
            return
        for module_id, results in self.last_update_results.items():
            kl, coeff = results["mean_kl_loss"], self.learner_vars[module_id]["curr_kl_coeff"]
            if kl > 2.0 * self.config.kl_target:
                coeff *= 1.5
            elif kl < 0.5 * self.config.kl_target:
                coeff *= 0.5
            self.learner_vars[module_id]["curr_kl_coeff"] = coeff

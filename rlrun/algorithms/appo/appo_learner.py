"""The APPO loss: PPO's clipped surrogate on V-trace advantages, relative to a target policy.

As in RLlib's APPO, V-trace corrects from the behaviour policy to the target
network's policy, the surrogate's ratio is current / target (times the
behaviour-to-target importance weight, clipped to [0, 2]), and the optional
KL loss keeps the current policy near the target. The target network is a
copy of the online one, refreshed every `target_network_update_freq` updates.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.impala.impala_learner import IMPALATorchLearner, masked_mean, vtrace_diagnostics
from rlrun.core.columns import Columns

TensorDict = dict[str, torch.Tensor]
UPDATES_SINCE_TARGET = "num_updates_since_target_update"


class APPOTorchLearner(IMPALATorchLearner):
    """APPO on the Learner hooks; the module is an `APPOModule` (online networks plus `target`)."""

    def build(self) -> None:
        super().build()
        for module_id in self.module:
            self.learner_vars[module_id][UPDATES_SINCE_TARGET] = 0

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        module = self.module[module_id]
        mask = batch[Columns.LOSS_MASK]
        dist_cls = module.get_train_action_dist_cls()
        dist = dist_cls.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        with torch.no_grad():
            target_dist = dist_cls.from_logits(module.forward_target(batch)[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        target_logp = target_dist.logp(batch[Columns.ACTIONS])
        values = fwd_out[Columns.VF_PREDS]
        vs, advantages, rhos = self.compute_vtrace(module_id, batch, target_logp, values)

        is_ratio = torch.exp(batch[Columns.ACTION_LOGP] - target_logp).clamp(0.0, 2.0)
        ratio = is_ratio * torch.exp(logp - batch[Columns.ACTION_LOGP])
        surrogate = torch.min(advantages * ratio,
                              advantages * ratio.clamp(1 - config.clip_param, 1 + config.clip_param))
        policy_loss = -masked_mean(surrogate, mask)
        vf_loss = 0.5 * masked_mean((values - vs).pow(2), mask)
        entropy = masked_mean(dist.entropy(), mask)
        kl = masked_mean(target_dist.kl(dist), mask)
        total = policy_loss + config.vf_loss_coeff * vf_loss - config.entropy_coeff * entropy
        if config.use_kl_loss:
            total = total + config.kl_coeff * kl
        self.log_metrics(policy_loss=policy_loss, vf_loss=vf_loss, entropy=entropy, mean_kl_loss=kl,
                         **vtrace_diagnostics(rhos, vs, values, mask))
        return total

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Every `target_network_update_freq` updates: target <- online."""
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module:
            learner_vars = self.learner_vars[module_id]
            learner_vars[UPDATES_SINCE_TARGET] += 1
            if learner_vars[UPDATES_SINCE_TARGET] >= self.config.target_network_update_freq:
                self.module[module_id].update_target()
                learner_vars[UPDATES_SINCE_TARGET] = 0

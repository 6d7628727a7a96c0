"""The SAC losses (Haarnoja et al., 2018, with automatic entropy tuning) and their three optimizers.

One backward pass of `critic + actor + alpha` trains all three, so each loss
must reach only its own parameters: the critic's targets are computed without
gradients, the actor's Q-values use detached critic weights (gradients flow
through the action only), and alpha's loss uses the detached log-prob.
Target-network updates and the TD errors for priorities come from
`OffPolicyTorchLearner`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.off_policy import OffPolicyTorchLearner
from rlrun.algorithms.off_policy.continuous import actor_critic_optimizers, frozen
from rlrun.algorithms.sac.sac_module import QF_PREDS, QF_TWIN_PREDS, SACModule, TanhGaussian
from rlrun.core.columns import Columns

TensorDict = dict[str, torch.Tensor]
# Standard normal noise per row, [rows, 2, action dims]: [:, 0] for the action at obs, [:, 1] at new_obs.
NOISE = "sac_noise"


class SACTorchLearner(OffPolicyTorchLearner):
    """SAC on the Learner hooks; the module is a `SACModule`."""

    def configure_optimizers_for_module(
        self, module_id: str, config: AlgorithmConfig
    ) -> dict[str, torch.optim.Optimizer]:
        """Actor, critics and alpha each with its own Adam and learning rate (`lr_of`: null = `lr`)."""
        module = self.module[module_id]
        return {**actor_critic_optimizers(module, config),
                "alpha": torch.optim.Adam([module.log_alpha], lr=config.lr_of("alpha_lr"), fused=True)}

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        """Adds the reparameterisation noise of every row, drawn from the learner's (checkpointed) generator:
        DDP ranks slice it like any column, so they use the noise the local learner would, and resume is exact."""
        rows = super().build_train_batch(module_id, batch)
        act_dim = rows[Columns.ACTIONS].shape[-1]
        rows[NOISE] = torch.randn((len(rows[Columns.REWARDS]), 2, act_dim), generator=self._generator).to(self.device)
        return rows

    def target_entropy(self, module_id: str) -> float:
        """`auto` = -(action dimensions), the SAC authors' heuristic; else the configured number."""
        target = self.config.target_entropy
        return -float(self.module[module_id].action_space.shape[-1]) if target == "auto" else float(target)

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        module: SACModule = self.module[module_id]
        policy = TanhGaussian(fwd_out[Columns.ACTION_DIST_INPUTS])
        actions, logp = policy.rsample(batch[NOISE][:, 0])
        alpha = module.log_alpha.exp().detach()

        critic_loss, td_error = self.critic_loss(module, batch, fwd_out, alpha)
        with frozen(module.qf):  # the actor improves against the critics as they are
            q_pi = module.qf.min(batch[Columns.OBS], actions)
        actor_loss = (alpha * logp - q_pi).mean()
        target_entropy = self.target_entropy(module_id)
        alpha_loss = -(module.log_alpha * (logp.detach() + target_entropy)).mean()

        self.record_td_errors(module_id, batch, td_error)
        q1 = fwd_out[QF_PREDS]
        self.log_metrics(qf_loss=critic_loss, policy_loss=actor_loss, alpha_loss=alpha_loss, alpha_value=alpha[0],
                         entropy=-logp.mean(), target_entropy=torch.tensor(target_entropy, device=self.device),
                         qf_mean=q1.mean(), qf_max=q1.max(), qf_min=q1.min(), td_error_mean=td_error.mean())
        return critic_loss + actor_loss + alpha_loss

    def critic_loss(
        self, module: SACModule, batch: TensorDict, fwd_out: TensorDict, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Twin soft Q-learning on n-step targets, importance-weighted; also each row's mean |TD error|."""
        with torch.no_grad():
            next_obs = batch[Columns.NEXT_OBS]
            next_policy = TanhGaussian(module.forward_inference({Columns.OBS: next_obs})[Columns.ACTION_DIST_INPUTS])
            next_actions, next_logp = next_policy.rsample(batch[NOISE][:, 1])
            soft_q_next = module.target_qf.min(next_obs, next_actions) - alpha * next_logp
            discount = self.config.gamma ** batch[Columns.N_STEP] * (1.0 - batch[Columns.TERMINATEDS].float())
            td_target = batch[Columns.REWARDS] + discount * soft_q_next
        td1, td2 = fwd_out[QF_PREDS] - td_target, fwd_out[QF_TWIN_PREDS] - td_target
        loss = (batch[Columns.WEIGHTS] * 0.5 * (td1.pow(2) + td2.pow(2))).mean()
        return loss, 0.5 * (td1.abs() + td2.abs()).detach()

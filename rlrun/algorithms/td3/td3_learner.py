"""The TD3 losses (Fujimoto, van Hoof and Meger, 2018, Algorithm 1) and their two optimizers.

Every gradient step trains the critics towards `y = r + gamma * min_i Q'_i(s', pi'(s') + eps)`, with
`eps = clip(N(0, target_noise^2), -c, c)` (target policy smoothing) and the smaller of the twin target
critics (clipped double Q-learning). Every `policy_delay`-th step also trains the actor on `-Q_1(s, pi(s))`
and moves the target networks (delayed policy updates). With `twin_q=false policy_delay=1
smooth_target_policy=false` the same code is DDPG.

The critic and actor losses share one backward pass, so each reaches only its own parameters: the target
is computed without gradients, and the actor's Q-values use frozen critic weights. On a step without the
actor's loss the actor has no gradient, and Adam leaves it (and its moments) as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.off_policy import OffPolicyTorchLearner
from rlrun.algorithms.off_policy.continuous import QF_PREDS, QF_TWIN_PREDS, actor_critic_optimizers, frozen
from rlrun.algorithms.td3.td3_module import TD3Module
from rlrun.core.columns import Columns

TensorDict = dict[str, torch.Tensor]
# Standard normal noise per row, [rows, action dims], for the target policy smoothing at new_obs.
NOISE = "td3_target_noise"
# Gradient steps taken so far (a learner variable: checkpointed, so a resumed run keeps the actor's rhythm).
NUM_GRADIENT_STEPS = "num_gradient_steps"


class TD3TorchLearner(OffPolicyTorchLearner):
    """TD3 on the Learner hooks; the module is a `TD3Module`."""

    def build(self) -> None:
        super().build()
        for module_id in self.module:
            self.learner_vars[module_id][NUM_GRADIENT_STEPS] = 0

    def configure_optimizers_for_module(
        self, module_id: str, config: AlgorithmConfig
    ) -> dict[str, torch.optim.Optimizer]:
        """The actor and the critics each with its own Adam and learning rate (`lr_of`: null = `lr`)."""
        return actor_critic_optimizers(self.module[module_id], config)

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        """Adds every row's smoothing noise, drawn from the learner's (checkpointed) generator: DDP ranks slice it
        like any column, so they use the noise the local learner would, and resume is exact."""
        rows = super().build_train_batch(module_id, batch)
        shape = rows[Columns.ACTIONS].shape
        rows[NOISE] = torch.randn(shape, generator=self._generator).to(self.device)
        return rows

    def is_policy_step(self, module_id: str) -> bool:
        """Whether the gradient step under way trains the actor: every `policy_delay`-th one."""
        return (self.learner_vars[module_id][NUM_GRADIENT_STEPS] + 1) % self.config.policy_delay == 0

    def targets_follow(self, module_id: str) -> bool:
        """The target networks move with the actor's steps only."""
        return self.is_policy_step(module_id)

    def after_gradient_step(self, *, module_id: str) -> None:
        super().after_gradient_step(module_id=module_id)
        self.learner_vars[module_id][NUM_GRADIENT_STEPS] += 1

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        module: TD3Module = self.module[module_id]
        critic_loss, td_error = self.critic_loss(module, batch, fwd_out)
        self.record_td_errors(module_id, batch, td_error)
        q1 = fwd_out[QF_PREDS]
        self.log_metrics(qf_loss=critic_loss, qf_mean=q1.mean(), qf_max=q1.max(), qf_min=q1.min(),
                         td_error_mean=td_error.mean())
        if not self.is_policy_step(module_id):
            return critic_loss
        with frozen(module.qf):  # the actor improves against the critics as they are
            actor_loss = -module.qf.q1(batch[Columns.OBS], fwd_out[Columns.ACTION_DIST_INPUTS]).mean()
        self.log_metrics(policy_loss=actor_loss)
        return critic_loss + actor_loss

    def critic_loss(
        self, module: TD3Module, batch: TensorDict, fwd_out: TensorDict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The critics' squared TD errors on n-step targets, importance-weighted; also each row's mean |TD error|."""
        config = self.config
        with torch.no_grad():
            next_obs = batch[Columns.NEXT_OBS]
            next_actions = module.actor(next_obs, target=True)
            if config.smooth_target_policy:
                noise = (config.target_noise * batch[NOISE]).clamp(-config.target_noise_clip, config.target_noise_clip)
                next_actions = (next_actions + noise).clamp(-1.0, 1.0)
            q_next = module.target_qf.min(next_obs, next_actions)
            discount = config.gamma ** batch[Columns.N_STEP] * (1.0 - batch[Columns.TERMINATEDS].float())
            td_target = batch[Columns.REWARDS] + discount * q_next
        errors = [fwd_out[column] - td_target for column in (QF_PREDS, QF_TWIN_PREDS) if column in fwd_out]
        loss = (batch[Columns.WEIGHTS] * 0.5 * sum(e.pow(2) for e in errors)).mean()
        return loss, (sum(e.abs() for e in errors) / len(errors)).detach()

"""The MARWIL loss: advantage-weighted log-likelihood plus a value loss (RLlib's form)."""

from __future__ import annotations

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.bc import BCTorchLearner
from rlrun.core.columns import Columns
from rlrun.core.learner import distributed

TensorDict = dict[str, torch.Tensor]
SQD_ADV_NORM = "moving_avg_sqd_adv_norm"


class MARWILTorchLearner(BCTorchLearner):
    """BC whose rows weigh exp(beta * A / c); with beta=0 it is BC exactly (and trains no value function)."""

    def needs_value_bootstrap(self) -> bool:
        return self.config.beta > 0

    def build(self) -> None:
        super().build()
        for module_id in self.module:
            self.learner_vars[module_id][SQD_ADV_NORM] = float(self.config.moving_average_sqd_adv_norm_start)

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        if config.beta == 0:
            return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        # A_t = R_t - V(s_t), R_t the discounted return-to-go of the dataset episode (plus, for an episode
        # cut off by a time limit, the discounted value of its final observation).
        with torch.no_grad():
            final_values = self.module[module_id].compute_values({Columns.OBS: batch[Columns.FINAL_OBS]})
        returns = batch[Columns.VALUE_TARGETS] + batch[Columns.FINAL_DISCOUNT] * final_values
        advantages = returns - fwd_out[Columns.VF_PREDS]
        advantages_squared_mean = advantages.pow(2).mean()
        # c^2 <- c^2 + rate * (mean A^2 - c^2), with the mean over every rank's rows of this minibatch.
        sqd_norm = self.learner_vars[module_id][SQD_ADV_NORM]
        batch_sqd = self._mean_over_ranks(advantages_squared_mean.detach())
        sqd_norm += config.moving_average_sqd_adv_norm_update_rate * (batch_sqd - sqd_norm)
        self.learner_vars[module_id][SQD_ADV_NORM] = sqd_norm
        weights = torch.exp(config.beta * advantages.detach() / (1e-8 + sqd_norm ** 0.5))
        policy_loss = -(weights * self.action_logp(module_id, batch, fwd_out)).mean()
        vf_loss = 0.5 * advantages_squared_mean
        self.log_metrics(policy_loss=policy_loss, vf_loss=vf_loss, mean_advantage_weight=weights.mean())
        return policy_loss + config.vf_coeff * vf_loss

    def _mean_over_ranks(self, value: torch.Tensor) -> float:
        """A per-row mean over all ranks' rows of the minibatch (each rank's weighed by its share)."""
        if self._world_size == 1:
            return float(value)
        return float(distributed.all_reduce_sum(value * self._minibatch_weights[-1]))

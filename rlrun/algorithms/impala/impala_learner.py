"""The IMPALA loss (Espeholt et al., 2018): V-trace policy gradient, value loss, entropy bonus.

The learner's rows are env columns: `build_train_batch` turns the time-major
`[T, B]` fragment into `[B, T]` trajectories, so minibatches (and DDP ranks)
take whole columns and V-trace, which is independent per column, sees each
one complete. Autoreset rows (`LOSS_MASK` 0) get V-trace numbers but no loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.core.arrays import as_tensor
from rlrun.core.columns import BOOTSTRAP_COLUMNS, RECURRENT_STEP_INPUTS, Columns
from rlrun.core.learner import TorchLearner
from rlrun.data.vtrace import VTraceReturns, vtrace

TensorDict = dict[str, torch.Tensor]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the rows where `mask` is 1 (autoreset rows excluded)."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


class IMPALATorchLearner(TorchLearner):
    """IMPALA on the Learner hooks; the module is an `IMPALAModule` (forward on `[B, T, ...]`)."""

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        """Columns of the `[T, B, ...]` fragment as `[B, T, ...]` trajectories; bootstrap columns stay `[B, ...]`."""
        rows: TensorDict = {}
        for key, value in batch.items():
            t = as_tensor(value)
            rows[key] = (t if key in BOOTSTRAP_COLUMNS.values() else t.transpose(0, 1)).to(self.device)
        rows[Columns.LOSS_MASK] = rows[Columns.LOSS_MASK].float()
        return rows

    def trains_sequences(self, module_id: str) -> bool:
        """Rows are whole trajectories, also for a recurrent module, which replays their sequences itself
        (`RecurrentIMPALAModule`): V-trace needs the time axis whole."""
        return False

    def steps_per_row(self, module_id: str, rows: TensorDict) -> torch.Tensor:
        """Each row is an env column of the fragment's length: minibatches of whole columns, about
        `minibatch_size` env steps each, and `num_module_steps_trained` in env steps."""
        steps, length = rows[Columns.REWARDS].shape[:2]
        return torch.full((steps,), length)

    def compute_vtrace(self, module_id: str, batch: TensorDict, target_logp: torch.Tensor,
                       values: torch.Tensor) -> VTraceReturns:
        """V-trace on `[B, T]` trajectories (values of the current module, no gradient); results are `[B, T]`."""
        with torch.no_grad():
            bootstrap = self.bootstrap_values(module_id, batch)
        out = vtrace(
            behaviour_logp=batch[Columns.ACTION_LOGP].T,
            target_logp=target_logp.detach().T,
            rewards=batch[Columns.REWARDS].T,
            values=values.detach().T,
            bootstrap_value=bootstrap,
            terminateds=batch[Columns.TERMINATEDS].T,
            truncateds=batch[Columns.TRUNCATEDS].T,
            gamma=self.config.gamma,
            clip_rho_threshold=self.config.vtrace_clip_rho_threshold,
            clip_pg_rho_threshold=self.config.vtrace_clip_pg_rho_threshold,
            lambda_=self.config.lambda_,
        )
        return VTraceReturns(*(x.T for x in out))

    def bootstrap_values(self, module_id: str, batch: TensorDict) -> torch.Tensor:
        """`[B]` values of the observations after each column's last step; a recurrent module's from the state
        after that step (`BOOTSTRAP_STATE_IN`), as one more step of its last sequence."""
        module = self.module[module_id]
        if not module.is_stateful():
            return module.compute_values({Columns.OBS: batch[Columns.BOOTSTRAP_OBS]})
        inputs = {column: batch[BOOTSTRAP_COLUMNS[column]].unsqueeze(1) for column in RECURRENT_STEP_INPUTS
                  if BOOTSTRAP_COLUMNS[column] in batch}
        return module.compute_values({**inputs, Columns.STATE_IN: batch[Columns.BOOTSTRAP_STATE_IN]})[:, 0]

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        mask = batch[Columns.LOSS_MASK]
        dist = self.module[module_id].get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        values = fwd_out[Columns.VF_PREDS]
        vs, advantages, rhos = self.compute_vtrace(module_id, batch, logp, values)

        policy_loss = -masked_mean(advantages * logp, mask)
        vf_loss = 0.5 * masked_mean((values - vs).pow(2), mask)
        entropy = masked_mean(dist.entropy(), mask)
        total = policy_loss + config.vf_loss_coeff * vf_loss - config.entropy_coeff * entropy
        self.log_metrics(policy_loss=policy_loss, vf_loss=vf_loss, entropy=entropy,
                         **vtrace_diagnostics(rhos, vs, values, mask))
        return total


def vtrace_diagnostics(rhos: torch.Tensor, vs: torch.Tensor, values: torch.Tensor,
                       mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """How off-policy the batch was (importance weights) and how well the values explain the targets."""
    live = mask.bool()
    return {
        "mean_vtrace_rho": masked_mean(rhos, mask),
        "max_vtrace_rho": rhos[live].max() if live.any() else rhos.new_zeros(()),
        "vf_explained_var": 1 - (vs - values.detach())[live].var() / (vs[live].var() + 1e-8),
    }

"""Learners written the way a user of the API would write them (imported by the tests)."""

from __future__ import annotations

import torch

from rlrun.core import Columns
from rlrun.core.learner import TorchLearner


class BCLearner(TorchLearner):
    """Behaviour cloning: maximise the log-likelihood of the batch's actions (API.md's example)."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        module = self.module[module_id]
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        return -torch.mean(dist.logp(batch[Columns.ACTIONS]))


class ValueOnlyLearner(TorchLearner):
    """A loss on the value head alone: the policy head gets no gradient (DDP must still average correctly)."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        return torch.mean((fwd_out[Columns.VF_PREDS] - batch[Columns.REWARDS]) ** 2)


class AlternatingLearner(TorchLearner):
    """A loss that changes between updates: BC on odd updates, the value regression on even ones."""

    def build(self) -> None:
        super().build()
        self.num_updates = 0

    def before_gradient_based_update(self, *, timesteps) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        self.num_updates += 1

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        learner = BCLearner if self.num_updates % 2 else ValueOnlyLearner
        return learner.compute_loss_for_module(self, module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


class TwoOptimizerLearner(TorchLearner):
    """Two optimizers on one module (as SAC has): SGD on the policy, Adam on the value net; one summed loss."""

    def configure_optimizers_for_module(self, module_id, config):
        module = self.module[module_id]
        return {
            "policy": torch.optim.SGD(module.pi.parameters(), lr=config.lr),
            "value": torch.optim.Adam(module.vf.parameters(), lr=config.lr),
        }

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        bc = BCLearner.compute_loss_for_module(self, module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        vf = ValueOnlyLearner.compute_loss_for_module(
            self, module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        return bc + vf

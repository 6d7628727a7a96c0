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

"""The actor-critic module of IMPALA and APPO: trains on whole trajectories `[B, T, ...]`."""

from __future__ import annotations

from rlrun.core.columns import Columns
from rlrun.core.rl_module import DefaultActorCriticModule
from rlrun.core.rl_module.rl_module import TensorDict


class IMPALAModule(DefaultActorCriticModule):
    """The default networks; `forward_train` also takes leading `[B, T]` dims and keeps them in its outputs.

    V-trace runs along each env's time axis, so the learner's rows are whole
    trajectories (one per env column) rather than single steps.
    """

    def forward_train(self, batch: TensorDict) -> TensorDict:
        obs = batch[Columns.OBS]
        lead = obs.shape[: obs.dim() - len(self.observation_space.shape)]
        out = super().forward_train({Columns.OBS: obs.reshape(-1, *self.observation_space.shape)})
        return {key: value.reshape(*lead, *value.shape[1:]) for key, value in out.items()}

"""The actor-critic modules of IMPALA and APPO: they train on whole trajectories `[B, T, ...]`."""

from __future__ import annotations

from rlrun.core.columns import RECURRENT_STEP_INPUTS, Columns
from rlrun.core.learner.sequences import Sequences
from rlrun.core.rl_module import DefaultActorCriticModule
from rlrun.core.rl_module.recurrent_actor_critic import RecurrentActorCriticModule
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


class RecurrentIMPALAModule(RecurrentActorCriticModule):
    """The recurrent networks (`model.use_lstm`); `forward_train` takes whole `[B, T]` trajectories.

    A trajectory holds the ends and starts of episodes, so each column is replayed as sequences that never
    cross an episode start (rlrun/core/learner/sequences.py), each from the state the runner recorded for its
    first step, and the outputs go back on the time axis, where V-trace runs as for any module.
    """

    def forward_train(self, batch: TensorDict) -> TensorDict:
        loss_mask = batch[Columns.LOSS_MASK].transpose(0, 1).cpu().numpy() > 0
        sequences = Sequences.cut(loss_mask, int(self.model_config["max_seq_len"]))
        inputs = {key: sequences.gather(batch[key].transpose(0, 1)) for key in RECURRENT_STEP_INPUTS if key in batch}
        inputs[Columns.STATE_IN] = sequences.first(batch[Columns.STATE_IN].transpose(0, 1))
        out = super().forward_train(inputs)
        return {key: sequences.scatter(value).transpose(0, 1) for key, value in out.items()}

"""The off-policy training step shared by DQN and SAC (RLlib's five steps).

Every iteration: sample from the env runners and add to the replay buffer;
then, once `num_steps_sampled_before_learning_starts` env steps are in, draw
train batches from the buffer and update the learners (`training_intensity`:
trained rows per sampled env step; null = one update per iteration), put the
TD errors back as priorities, and sync the weights to the env runners. The
buffer is part of the checkpoint unless `checkpoint_replay_buffer` is False
(`checkpoint.replay_buffer=false`); a run resumed from such a checkpoint refills
an empty buffer for `num_steps_sampled_before_learning_starts` env steps before
it learns again, rather than fit the handful of transitions sampled since.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig, check_schedule
from rlrun.config.errors import ConfigError, check
from rlrun.core import checkpointing as ckpt
from rlrun.core.arrays import as_tensor, map_leaves
from rlrun.core.columns import Columns
from rlrun.core.schedules import PiecewiseSchedule
from rlrun.data.replay_buffers import REPLAY_BUFFERS, ReplayBuffer

REPLAY_BUFFER_FILE = "replay_buffer.pt"
# Whether the checkpoint holds the buffer, and where learning (re)starts: plain JSON beside it.
OFF_POLICY_STATE_FILE = "off_policy_state.json"
TD_ERROR = "td_error"

log = logging.getLogger("rlrun")


class OffPolicyAlgorithm(Algorithm):
    """Samples into a replay buffer every iteration, then trains on batches drawn from it."""

    config: OffPolicyConfig

    def __init__(self, config: AlgorithmConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.replay_buffer = self.config.build_replay_buffer()
        buffer = self.config.replay_buffer
        self._beta = PiecewiseSchedule(buffer["beta_schedule"] or [[0, buffer["beta"]]])
        # False leaves the buffer out of `save_to_path` (`checkpoint.replay_buffer=false`, for huge buffers).
        self.checkpoint_replay_buffer = True
        # Learning starts once this many env steps are sampled in all, and `training_intensity` counts the
        # updates made since `_updates_at_start`; a resume without a buffer moves both to the resume point.
        self._learning_starts = self.config.num_steps_sampled_before_learning_starts
        self._updates_at_start = 0

    def training_step(self) -> dict[str, Any]:
        with self.timer("env_runner_sampling_timer"):
            batch, env_steps = self.env_runner_group.sample()
        self.counters["num_env_steps_sampled_lifetime"] += env_steps
        self.replay_buffer.add(batch)
        sampled = self.counters["num_env_steps_sampled_lifetime"]
        with self.timer("learner_update_timer"):
            num_updates = self._num_updates()
            learner_results = self._update(num_updates, sampled) if num_updates else {}
        with self.timer("synch_weights"):
            self.sync_weights()
        return {
            "env_runners": {"num_env_steps_sampled": env_steps, **self.exploration_metrics()},
            "learners": learner_results,
            "replay_buffer": self.replay_buffer.get_metrics(),
        }

    def _update(self, num_updates: int, sampled: int) -> dict[str, Any]:
        """`num_updates` train batches drawn at once and trained in one learner call (RLlib's form).

        The learner cuts the rows into `minibatch_size` minibatches, so the gradient steps are those of
        `num_updates` separate updates, without paying the sampling, batch conversion and result gathering
        once per step. Within an iteration no env steps pass, so the lr schedule and beta are the same for all
        of them, and a target network counted in env steps moves once, after the last step rather than the
        first (`target_network_update_freq: 0` still moves it after every step). Priorities are set after all.
        """
        train_batch = self.replay_buffer.sample(
            num_updates * self.config.train_batch_size, n_step=self.config.n_step, gamma=self.config.gamma,
            beta=self._beta.value(sampled))
        indices = train_batch.pop(Columns.INDICES)
        results = self.learner_group.update(batch=train_batch, timesteps={"num_env_steps_sampled_lifetime": sampled})[0]
        for module_results in results.values():
            self.replay_buffer.update_priorities(indices, module_results.pop(TD_ERROR))
        self.counters["num_learner_updates_lifetime"] += num_updates
        self.counters["num_env_steps_trained_lifetime"] += num_updates * self.config.train_batch_size
        return results

    def _num_updates(self) -> int:
        """Updates owed now: none before learning starts, then `training_intensity` trained rows per env step."""
        since_start = self.counters["num_env_steps_sampled_lifetime"] - self._learning_starts
        if since_start < 0:
            return 0
        if self.config.training_intensity is None:
            return 1
        owed = math.floor(self.config.training_intensity * since_start / self.config.train_batch_size)
        return max(0, owed - (self.counters["num_learner_updates_lifetime"] - self._updates_at_start))

    def sync_weights(self) -> None:
        """Send the learners' weights to the env runners, each module's with `exploration_weights()` beside them."""
        weights = self.learner_group.get_weights()
        exploration = self.exploration_weights()
        for module_weights in weights.values():
            module_weights.update(exploration)
        self.env_runner_group.sync_weights(weights)

    def exploration_weights(self) -> dict[str, np.ndarray]:
        """The env runners' module buffers that the algorithm sets for the env steps sampled so far, not the
        learners (DQN's epsilon, TD3's noise and random start); none here."""
        return {}

    def exploration_metrics(self) -> dict[str, float]:
        """`env_runners/*` metrics of the exploration schedule, if the algorithm has one."""
        return {}

    def save_extra_state(self, path: Path) -> None:
        """Where learning starts, and the replay buffer (storage, priorities, write position, counters, RNG) as
        tensors unless `checkpoint_replay_buffer` is False."""
        ckpt.save_json(path / OFF_POLICY_STATE_FILE, {
            "replay_buffer": self.checkpoint_replay_buffer,
            "learning_starts": self._learning_starts,
            "num_learner_updates_at_start": self._updates_at_start,
        })
        if self.checkpoint_replay_buffer:
            # Tensors that share the buffer's memory: the file is written at once, and a copy of a 7 GB Atari
            # buffer would double the run's memory while it saves.
            state = map_leaves(self.replay_buffer.get_state(), np.ndarray, as_tensor)
            ckpt.save_torch(path / REPLAY_BUFFER_FILE, state)

    def restore_extra_state(self, path: Path) -> None:
        """The saved buffer, or -- from a checkpoint without one -- an empty buffer that is refilled first."""
        # Checkpoints from before `checkpoint.replay_buffer` existed hold the buffer and no state file.
        state = ckpt.load_json(path / OFF_POLICY_STATE_FILE) if (path / OFF_POLICY_STATE_FILE).exists() else {
            "replay_buffer": True, "learning_starts": self._learning_starts, "num_learner_updates_at_start": 0}
        if state["replay_buffer"]:
            self._restore_replay_buffer(path)
            self._learning_starts = state["learning_starts"]
            self._updates_at_start = state["num_learner_updates_at_start"]
        else:
            wait = self.config.num_steps_sampled_before_learning_starts
            self.replay_buffer = self.config.build_replay_buffer()
            self._learning_starts = self.counters["num_env_steps_sampled_lifetime"] + wait
            self._updates_at_start = self.counters["num_learner_updates_lifetime"]
            log.warning("%s holds no replay buffer (checkpoint.replay_buffer=false): refilling an empty one; "
                        "learning resumes after %d env steps (algo.num_steps_sampled_before_learning_starts)",
                        path, wait)
        self.sync_weights()

    def _restore_replay_buffer(self, path: Path) -> None:
        state = map_leaves(ckpt.load_torch(path / REPLAY_BUFFER_FILE), torch.Tensor, torch.Tensor.numpy)
        try:
            self.replay_buffer.set_state(state)
        except (KeyError, ValueError, TypeError) as e:
            raise ckpt.CheckpointError(f"replay buffer in {path} does not fit replay_buffer.type="
                                       f"{self.config.replay_buffer['type']}: {e}") from None


class OffPolicyConfig(AlgorithmConfig):
    """Builder keys and checks of every replay-buffer algorithm (`replay_buffer`, `n_step`, `tau`, ...)."""

    supports_multi_agent: ClassVar[bool] = False  # one replay buffer of single-agent rows
    has_log_std_weight: ClassVar[bool] = False  # DQN's Q-values; SAC's log std is an output; TD3's actor has none
    # An actor-critic's own learning-rate keys (SAC: actor_lr, critic_lr, alpha_lr), each null = `lr`.
    learning_rate_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.replay_buffer: dict[str, Any] = dataclasses.asdict(self.schema().replay_buffer)

    def training(self, *, replay_buffer_config: dict[str, Any] | None = None, **kwargs: Any) -> OffPolicyConfig:
        """Algorithm keys; `replay_buffer` (or RLlib's `replay_buffer_config`) sets only the keys given."""
        buffer = {**(kwargs.pop("replay_buffer", None) or {}), **(replay_buffer_config or {})}
        unknown = set(buffer) - set(self.replay_buffer)
        if unknown:
            raise ConfigError(f"unknown algo.replay_buffer key(s) {sorted(unknown)}; allowed: "
                              f"{sorted(self.replay_buffer)}")
        self.replay_buffer.update(buffer)
        super().training(**kwargs)
        return self

    def build_replay_buffer(self) -> ReplayBuffer:
        buffer = self.replay_buffer
        extra = {"alpha": buffer["alpha"], "epsilon": buffer["epsilon"]} if buffer["type"] == "prioritized" else {}
        num_envs = max(1, self.num_env_runners) * self.num_envs_per_env_runner
        return REPLAY_BUFFERS[buffer["type"]](buffer["capacity"], seed=self.seed, num_envs=num_envs,
                                              frame_stack=self.frame_stack(), **extra)

    def lr_of(self, key: str) -> float:
        """One of `learning_rate_keys`, falling back to `lr`."""
        value = getattr(self, key)
        return self.lr if value is None else value

    def frame_stack(self) -> int:
        """Frames each observation stacks on axis 0 (`env.atari.frame_stack`), which the replay buffer stores
        once each instead of once per stack; 1 without Atari preprocessing (whole observations are stored)."""
        atari = self.env_spec().atari
        return 1 if atari is None else atari.frame_stack

    def validate(self) -> None:
        super().validate()
        buffer = self.replay_buffer
        check(buffer["capacity"] >= self.train_batch_size, "algo.replay_buffer.capacity must be >= "
              f"algo.train_batch_size ({self.train_batch_size})", buffer["capacity"])
        if buffer["beta_schedule"] is not None:
            check_schedule(buffer["beta_schedule"], "algo.replay_buffer.beta_schedule", "beta", upper=1.0,
                           starts_at=("algo.replay_buffer.beta", buffer["beta"]))
        rates = {2: "both", 3: "all three"}.get(len(self.learning_rate_keys))
        for name in self.learning_rate_keys:
            value = getattr(self, name)
            # The lr schedule sets every optimizer's rate, so it is one rate for all of them.
            check(value is None or self.lr_schedule is None,
                  f"algo.{name} cannot go with algo.lr_schedule, which sets {rates} {self.schema.name.upper()} "
                  f"learning rates; set algo.{name}=null", value)

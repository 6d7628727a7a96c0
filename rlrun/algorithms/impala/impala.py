"""IMPALA (Espeholt et al., 2018): config schema, builder and the asynchronous training step.

Every iteration takes the fragments the env runners have ready (no barrier:
`EnvRunnerGroup.sample_async`, each runner always has a request in flight),
stacks them on the env axis into a train batch of at least
`train_batch_size` env steps, and hands it to the learners with
`async_update=True`; results of earlier updates come back as they finish.
New weights go out every `broadcast_interval` updates, queued behind the
runners' current fragments. The policy lag of a fragment is the number of
updates between the weights that sampled it and those it trains.

Embedded (`env_runners.num=0`, `learners.num=0`) the same step is
synchronous: one local fragment, one blocking update, so with
`broadcast_interval=1` every batch is on-policy.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rlrun.algorithms.algorithm import Algorithm, mean_learner_results
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.impala.schema import IMPALASchema
from rlrun.config.errors import check
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModuleSpec
from rlrun.core.rl_module.custom import ModuleContract
from rlrun.env.env_runner_actors import Fragment
from rlrun.env.env_runner_group import concat_env_axis, env_slots, env_steps


class IMPALA(Algorithm):
    """Asynchronous sampling and learning with V-trace off-policy correction."""

    config: IMPALAConfig

    def __init__(self, config: AlgorithmConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # Fragments sampled but not yet in a train batch, and the env steps of updates still running.
        self._fragments: deque[Fragment] = deque()
        self._steps_in_flight: deque[int] = deque()
        # Learner metrics of the newest iteration in which an update finished (see training_step).
        self._last_learner_results: dict[str, Any] = {}

    def training_step(self) -> dict[str, Any]:
        with self.timer("env_runner_sampling_timer"):
            batch, env_steps, lags = self._next_train_batch()
        self.counters["num_env_steps_sampled_lifetime"] += env_steps
        learner_results: list[dict[str, Any]] = []
        with self.timer("learner_update_timer"):
            for train_batch in self.batches_to_train(batch):
                learner_results += self._update(train_batch)
        with self.timer("synch_weights"):
            self._broadcast_if_due()
        # With async updates an iteration can end before any update finished: like RLlib's metrics logger,
        # keep reporting the newest learner metrics, so a row never lacks its loss columns.
        if learner_results:
            self._last_learner_results = mean_learner_results(learner_results)
        return {
            "env_runners": {
                "num_env_steps_sampled": env_steps,
                "num_sample_requests_in_flight": self.env_runner_group.num_sample_requests_in_flight,
                "num_fragments_queued": len(self._fragments),
                "weights_version": self.env_runner_group.weights_version,
            },
            "learners": self._last_learner_results,
            "learner_group": {
                "num_updates_finished": len(learner_results),
                "num_updates_in_flight": len(self._steps_in_flight),
                "policy_lag_mean": float(np.mean(lags)),
                "policy_lag_max": int(np.max(lags)),
            },
        }

    def batches_to_train(self, batch: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The batches to update on after sampling `batch` (APPO replays them from a circular buffer)."""
        return [batch]

    def _next_train_batch(self) -> tuple[dict[str, np.ndarray], int, list[int]]:
        """Ready fragments until `train_batch_size` env steps, stacked on the env axis; also each one's lag."""
        rows = 0
        taken: list[Fragment] = []
        while rows < self.config.train_batch_size:
            if not self._fragments:
                self._fragments.extend(self.env_runner_group.sample_async())
            fragment = self._fragments.popleft()
            taken.append(fragment)
            rows += env_slots(fragment.batch)
        batch = concat_env_axis([f.batch for f in taken])
        # The updates this batch trains after, minus those its weights had seen.
        version = self.counters["num_learner_updates_lifetime"]
        return batch, env_steps(batch), [version - f.weights_version for f in taken]

    def _update(self, batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """One learner update (asynchronous with learner actors); returns the updates that finished meanwhile."""
        self.counters["num_learner_updates_lifetime"] += 1
        timesteps = {"num_env_steps_sampled_lifetime": self.counters["num_env_steps_sampled_lifetime"]}
        self._steps_in_flight.append(env_steps(batch))
        results = self.learner_group.update(batch=batch, timesteps=timesteps,
                                            async_update=self.learner_group.is_remote)
        for _ in results:
            self.counters["num_env_steps_trained_lifetime"] += self._steps_in_flight.popleft()
        return results

    def _broadcast_if_due(self) -> None:
        """Every `broadcast_interval` updates: queue the newest weights at the runners, tagged with that count."""
        updates = self.counters["num_learner_updates_lifetime"]
        if updates - self.env_runner_group.weights_version >= self.config.broadcast_interval:
            # Learner actors run their calls in order, so these weights include every update sent so far.
            self.env_runner_group.sync_weights(self.learner_group.get_weights(), version=updates, wait=False)

    def restore_extra_state(self, path: Path) -> None:
        """The runners got the checkpoint's weights: tag them with its update count, so lags stay right."""
        self.env_runner_group.sync_weights(self.learner_group.get_weights(),
                                           version=self.counters["num_learner_updates_lifetime"])


class IMPALAConfig(AlgorithmConfig):
    """Builder for IMPALA: `IMPALAConfig().environment("CartPole-v1").env_runners(num_env_runners=2).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = IMPALASchema
    algo_class: ClassVar[type[Algorithm]] = IMPALA
    supports_recurrent: ClassVar[bool] = True
    # V-trace reads whole trajectories: forward_train takes [B, T, ...] observations and keeps both dims.
    module_contract: ClassVar[ModuleContract] = dataclasses.replace(AlgorithmConfig.module_contract,
                                                                    time_major=True)

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.impala.impala_learner import IMPALATorchLearner

        return IMPALATorchLearner

    def get_rl_module_spec(self) -> RLModuleSpec:
        from rlrun.algorithms.impala.impala_module import IMPALAModule, RecurrentIMPALAModule
        from rlrun.core.rl_module.recurrent import is_recurrent

        module_class = RecurrentIMPALAModule if is_recurrent(self.model_config) else IMPALAModule
        return RLModuleSpec(module_class, dict(self.model_config))

    def validate(self) -> None:
        super().validate()
        # Minibatches are whole env columns, so each DDP learner needs at least one column.
        steps = self.get_rollout_fragment_length()
        check(self.minibatch_size >= max(1, self.num_learners) * steps,
              f"algo.minibatch_size must hold at least learners.num ({self.num_learners}) env columns of "
              f"env_runners.rollout_fragment_length ({steps}) steps", self.minibatch_size)

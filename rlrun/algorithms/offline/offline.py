"""The offline training step shared by BC and MARWIL: learn from a recorded dataset, never sample the env.

Each learner streams its own shard of the dataset (`rlrun/data/offline/reader.py`),
so an iteration is one learner update on `train_batch_size` dataset rows, and
`num_env_steps_sampled_lifetime` counts the rows read (RLlib counts offline rows
the same way), which is what `stop.timesteps` compares. The env is only used
for evaluation: `evaluation.*` episodes with the current weights.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.config.errors import ConfigError, check


class OfflineAlgorithm(Algorithm):
    """Every iteration: each learner reads its next rows from its shard and updates on them."""

    def training_step(self) -> dict[str, Any]:
        steps = {"num_env_steps_sampled_lifetime": self.counters["num_env_steps_sampled_lifetime"]}
        with self.timer("learner_update_timer"):
            learner_results = self.learner_group.update_from_dataset(timesteps=steps)
        rows = self.config.train_batch_size
        self.counters["num_env_steps_sampled_lifetime"] += rows
        self.counters["num_env_steps_trained_lifetime"] += rows
        return {"learners": learner_results[0]}


class OfflineConfig(AlgorithmConfig):
    """Checks that a dataset is given, readable and recorded in an env with this run's spaces."""

    supports_multi_agent: ClassVar[bool] = False  # datasets are single-agent (Minari)

    def validate(self) -> None:
        super().validate()
        name = self.algo_class.__name__.lower()
        if self.dataset is None:
            raise ConfigError(f"algo={name} trains from a recorded dataset: set offline.dataset=<directory or "
                              "Minari dataset id> (record one with rlrun-eval checkpoint=<run> record=<dir>)")
        check(self.dataset_memory_rows >= self.train_batch_size,
              f"offline.memory_rows must be >= algo.train_batch_size ({self.train_batch_size})",
              self.dataset_memory_rows)
        check(self.num_env_runners == 0, f"algo={name} does not sample the env (it evaluates in this process); "
              "set env_runners.num=0", self.num_env_runners)
        check(self.train_batch_size >= max(1, self.num_learners),
              f"algo.train_batch_size must be >= learners.num ({self.num_learners})", self.train_batch_size)
        self._validate_dataset()

    def _validate_dataset(self) -> None:
        from rlrun.data.offline.dataset import OfflineDataError, check_spaces, dataset_info
        from rlrun.env.env_creation import env_spaces

        try:
            info = dataset_info(self.dataset)
            check_spaces(info, self.env, *env_spaces(self.env_spec()))
        except OfflineDataError as e:
            raise ConfigError(str(e)) from None
        episodes = len(info.episode_lengths)
        check(episodes >= max(1, self.num_learners),
              f"learners.num must be <= the dataset's {episodes} episodes (each learner reads its own)",
              self.num_learners)

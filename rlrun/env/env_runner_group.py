"""EnvRunnerGroup: the algorithm's one handle on sampling, however many EnvRunners exist.

With `num_env_runners=0` sampling happens in a local EnvRunner in this process.
Callers use only `sample`, `sync_weights`, `get_metrics` and the state methods, so
remote EnvRunner actors can be added behind them without changing any caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlrun.core.columns import Columns
from rlrun.env.env_runner import EnvRunner

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig


class EnvRunnerGroup:
    """Owns the EnvRunners of an algorithm and merges what they sample."""

    def __init__(self, *, config: AlgorithmConfig) -> None:
        if config.num_env_runners > 0:
            raise NotImplementedError(
                "env_runners.num > 0 (EnvRunner actors on Ray) is not available yet; use env_runners.num=0"
            )
        self.config = config
        self._local = EnvRunner(config=config)

    @property
    def env(self) -> gym.vector.VectorEnv:
        """A vector env of the group, for its observation and action spaces."""
        return self._local.env

    @property
    def num_healthy_env_runners(self) -> int:
        return 1

    def sample(self) -> tuple[dict[str, np.ndarray], int]:
        """One fragment from every runner, merged on the env axis; also returns the real env steps."""
        batch = self._local.sample()
        return batch, int(batch[Columns.LOSS_MASK].sum())

    def sync_weights(self, weights: Mapping[str, Any]) -> None:
        """Send the learners' module weights to every runner."""
        self._local.set_weights(weights)

    def get_metrics(self) -> dict[str, list[float]]:
        return self._local.get_metrics()

    def get_state(self) -> dict[str, Any]:
        return {"local": self._local.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._local.set_state(state["local"])

    def stop(self) -> None:
        self._local.stop()

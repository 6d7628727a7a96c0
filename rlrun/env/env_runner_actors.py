"""EnvRunner actors on Ray, with fault tolerance.

A runner whose process dies or whose env raises is killed, replaced by a fresh
actor with the latest weights, and counted; the iteration goes on with the
samples of the healthy runners. Past `max_num_env_runner_restarts` the run
fails with one line naming the limit and the runner's error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rlrun.env.env_runner import EnvRunner

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

log = logging.getLogger("rlrun")
# A replacement runner draws seeds of its own, so it does not replay its predecessor's episodes.
RESTART_SEED_STRIDE = 1_000_003


class EnvRunnerFailure(RuntimeError):
    """Env runners failed more often than `env_runners.max_restarts` allows."""


class SamplingEnvRunner(EnvRunner):
    """The actor-side EnvRunner: one call returns a fragment and the episodes it finished."""

    def sample_with_metrics(self) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
        return self.sample(), self.get_metrics()


class EnvRunnerActors:
    """`num_env_runners` actors (worker indices 1..N), restarted and re-synced when they fail."""

    def __init__(self, config: AlgorithmConfig) -> None:
        import ray

        from rlrun.cluster import ensure_ray

        ensure_ray(config)
        self.config = config
        self._actor_cls = ray.remote(SamplingEnvRunner).options(num_cpus=config.num_cpus_per_env_runner)
        self.num_restarts = 0
        self._actors = {i: self._start(i) for i in range(1, config.num_env_runners + 1)}
        self._weights_ref: Any = None
        self._metrics: list[dict[str, list[float]]] = []
        self.num_healthy = len(self._actors)

    def _start(self, index: int) -> Any:
        config = self.config.copy()
        config.seed += RESTART_SEED_STRIDE * self.num_restarts
        return self._actor_cls.remote(config=config, worker_index=index)

    def sample(self) -> list[dict[str, np.ndarray]]:
        """One fragment from every healthy runner; if all failed, sample again from their replacements."""
        results: dict[int, Any] = {}
        while not results:
            results = self._gather({i: a.sample_with_metrics.remote() for i, a in self._actors.items()})
        self.num_healthy = len(results)
        self._metrics.extend(metrics for _, metrics in results.values())
        return [batch for batch, _ in results.values()]

    def sync_weights(self, weights: Mapping[str, Any]) -> None:
        """One object-store put; every runner reads the same copy."""
        import ray

        self._weights_ref = ray.put(dict(weights))
        self._gather({i: a.set_weights.remote(self._weights_ref) for i, a in self._actors.items()})

    def get_metrics(self) -> dict[str, list[float]]:
        """Episodes the runners finished since the last call, merged."""
        merged: dict[str, list[float]] = {}
        for metrics in self._metrics:
            for key, values in metrics.items():
                merged.setdefault(key, []).extend(values)
        self._metrics = []
        return merged

    def get_state(self) -> dict[str, Any]:
        return {str(i): s for i, s in self._gather({i: a.get_state.remote() for i, a in self._actors.items()}).items()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._gather({i: a.set_state.remote(state[str(i)]) for i, a in self._actors.items() if str(i) in state})

    def _gather(self, refs: Mapping[int, Any]) -> dict[int, Any]:
        """Results of the runners that answered; each failed runner is replaced."""
        import ray

        results = {}
        for index, ref in refs.items():
            try:
                results[index] = ray.get(ref)
            except ray.exceptions.RayError as error:
                self._restart(index, error)
        return results

    def _restart(self, index: int, error: Exception) -> None:
        import ray

        reason = _first_line(error)
        limit = self.config.max_num_env_runner_restarts
        if self.num_restarts >= limit:
            raise EnvRunnerFailure(f"env runner {index} failed after {self.num_restarts} restarts "
                                   f"(env_runners.max_restarts={limit}): {reason}") from None
        log.warning("env runner %d failed (%s); restarting it", index, reason)
        with contextlib.suppress(ray.exceptions.RayError):
            ray.kill(self._actors[index])
        self.num_restarts += 1
        self._actors[index] = self._start(index)
        if self._weights_ref is not None:
            # Queued before its next sample, so the replacement never samples with initial weights.
            self._actors[index].set_weights.remote(self._weights_ref)

    def stop(self) -> None:
        import ray

        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            ray.get([a.stop.remote() for a in self._actors.values()], timeout=10)
        for actor in self._actors.values():
            ray.kill(actor)


def _first_line(error: Exception) -> str:
    """The user-facing cause of a Ray error (its own first line, or the remote exception's last line)."""
    cause = getattr(error, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__

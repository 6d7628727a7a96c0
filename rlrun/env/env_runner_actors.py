"""EnvRunner actors on Ray, with fault tolerance.

A runner whose process dies or whose env raises is killed, replaced by a fresh
actor with the latest weights, and counted; the iteration goes on with the
samples of the healthy runners. Past `max_num_env_runner_restarts` the run
fails with one line naming the limit and the runner's error.

Two ways to sample: `sample()` asks every runner for one fragment and waits for
all (PPO); `sample_async()` keeps one request in flight per runner and takes
whichever fragments are ready (IMPALA, APPO), each tagged with the weights
version the runner sampled with. In both, and in every other call the driver
waits on (weights, state), a runner that has not answered within
`sample_timeout_s` is taken for hung (a SIGSTOP, a deadlocked env) and replaced
like a dead one. The clock of a replacement starts once it is up: start-up,
which may wait for the cluster's resources, is no hang.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from rlrun.env.env_runner import EnvRunner
from rlrun.env.multi_agent.creation import is_turn_based_env
from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner
from rlrun.env.multi_agent.turn_based import TurnBasedEnvRunner
from rlrun.env.normalization import NORMALIZATION_KEY, Normalizer

if TYPE_CHECKING:
    import gymnasium as gym

    from rlrun.env.runner_spec import EnvRunnerGroupSpec, EnvRunnerSpec

log = logging.getLogger("rlrun")
# A replacement runner draws seeds of its own, so it does not replay its predecessor's episodes.
RESTART_SEED_STRIDE = 1_000_003


class EnvRunnerFailure(RuntimeError):
    """Env runners failed more often than `env_runners.max_restarts` allows."""


class Fragment(NamedTuple):
    """One runner's sample and the weights version (`sync_weights(..., version=)`) that produced it."""

    batch: dict[str, np.ndarray]
    weights_version: int


@dataclass
class _Request:
    """A sample request in flight; its clock starts once the runner is known to be up (`started` set)."""

    ref: Any
    weights_version: int
    started: float | None


class _SamplesWithMetrics:
    """What the actor side adds to an env runner: its own torch thread count, and one call that returns a
    fragment, the episodes it finished and what normalisation learned from it."""

    def __init__(self, spec: EnvRunnerSpec, **kwargs: Any) -> None:
        torch.set_num_threads(spec.num_threads)  # the actor's process is its own
        super().__init__(spec, **kwargs)  # type: ignore[call-arg]

    def sample_with_metrics(self) -> tuple[dict[str, np.ndarray], dict[str, list[float]], dict[str, Any]]:
        return self.sample(), self.get_metrics(), self.normalizer.pop_delta()  # type: ignore[attr-defined]


class SamplingEnvRunner(_SamplesWithMetrics, EnvRunner):
    """The actor-side EnvRunner of a gymnasium env."""


class SamplingMultiAgentEnvRunner(_SamplesWithMetrics, MultiAgentEnvRunner):
    """The actor-side EnvRunner of a PettingZoo env."""


class SamplingTurnBasedEnvRunner(_SamplesWithMetrics, TurnBasedEnvRunner):
    """The actor-side EnvRunner of a turn-based PettingZoo game."""


class EnvRunnerActors:
    """`num_env_runners` actors (worker indices 1..N), restarted and re-synced when they fail.

    With normalisation on, this (the driver) holds the merged statistics: each fragment's delta
    is merged in as it arrives (in worker order for `sample()`, so runs are reproducible) and the
    result goes back to every runner before its next fragment, as RLlib's filter sync does.
    """

    def __init__(self, spec: EnvRunnerGroupSpec, obs_space: gym.Space) -> None:
        import ray

        from rlrun.cluster import RunResources, ensure_ray

        ensure_ray(RunResources(num_env_runners=spec.num_env_runners,
                                num_cpus_per_env_runner=spec.num_cpus_per_env_runner))
        self.spec = spec
        runner_cls = SamplingEnvRunner
        if spec.runner.multi_agent is not None:
            turn_based = is_turn_based_env(spec.runner.env.id, spec.runner.env.env_config)
            runner_cls = SamplingTurnBasedEnvRunner if turn_based else SamplingMultiAgentEnvRunner
        self._actor_cls = ray.remote(runner_cls).options(num_cpus=spec.num_cpus_per_env_runner)
        self.num_restarts = 0
        # For each runner still starting up, the call whose answer says it is up (start-up is no hang).
        self._starting: dict[int, Any] = {}
        self._actors = {i: self._start(i) for i in range(1, spec.num_env_runners + 1)}
        self._weights_ref: Any = None
        self._metrics: list[dict[str, list[float]]] = []
        self.num_healthy = len(self._actors)
        # Asynchronous sampling: the weights version each runner has queued and its request in flight.
        self.weights_version = 0
        self._versions = dict.fromkeys(self._actors, 0)
        self._requests: dict[int, _Request] = {}
        # The merged normalisation statistics and their latest broadcast.
        normalizer = Normalizer(spec.runner.normalization, obs_space, num_envs=0)
        self._normalization_enabled = normalizer.enabled
        self._normalization = normalizer.stats
        self._normalization_ref: Any = None

    def _start(self, index: int) -> Any:
        """A new actor for runner `index`; it counts as starting until it has answered (its constructor ran)."""
        runner = self.spec.runner
        actor = self._actor_cls.remote(runner.replace(seed=runner.seed + RESTART_SEED_STRIDE * self.num_restarts),
                                       worker_index=index)
        self._starting[index] = actor.__ray_ready__.remote()
        return actor

    def sample(self) -> list[dict[str, np.ndarray]]:
        """One fragment from every healthy runner; if all failed or hung, sample again from their replacements."""
        results: dict[int, Any] = {}
        while not results:
            results = self._gather({i: a.sample_with_metrics.remote() for i, a in self._actors.items()})
        self.num_healthy = len(results)
        self._metrics.extend(metrics for _, metrics, _ in results.values())
        self._merge_normalization([delta for _, _, delta in results.values()])
        return [batch for batch, _, _ in results.values()]

    def sample_async(self, timeout_s: float) -> list[Fragment]:
        """The fragments ready now (waiting for the first one if none is); every runner gets its next request.

        A runner whose request is older than `timeout_s` (counted from when the
        runner was up) is replaced, as is one that failed.
        """
        import ray

        self._submit_requests()
        refs = [r.ref for r in self._requests.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._seconds_to_first_deadline(timeout_s))
        ready_set, now = set(ready), time.monotonic()
        fragments, deltas = [], []
        for index, request in list(self._requests.items()):
            if request.ref in ready_set:
                del self._requests[index]
                try:
                    batch, metrics, delta = ray.get(request.ref)
                except ray.exceptions.RayError as error:
                    self._restart(index, error)
                    continue
                self._metrics.append(metrics)
                deltas.append(delta)
                fragments.append(Fragment(batch, request.weights_version))
            elif request.started is not None and now - request.started > timeout_s:
                del self._requests[index]
                self._restart(index, _hung(timeout_s))
        self.num_healthy = len(self._actors) - len(self._starting)
        self._merge_normalization(deltas)
        self._submit_requests()
        return fragments

    def _merge_normalization(self, deltas: list[dict[str, Any]]) -> None:
        """Merge the runners' new statistics into the driver's and queue the result for every runner.

        Queued, not awaited: an actor runs its calls in order, so each runner adopts the merged
        statistics before its next fragment (asynchronous sampling: its next-but-one).
        """
        if not self._normalization_enabled or not deltas:
            return
        import ray

        for delta in deltas:
            self._normalization.merge(delta)
        self._normalization_ref = ray.put(self._normalization.get_state())
        for actor in self._actors.values():
            actor.sync_normalization.remote(self._normalization_ref)

    def get_normalization(self) -> dict[str, Any]:
        """The merged normalisation statistics."""
        return self._normalization.get_state()

    @property
    def num_requests_in_flight(self) -> int:
        return len(self._requests)

    def _submit_requests(self) -> None:
        """One request in flight per runner; start the clock of requests whose (new) runner is now up."""
        import ray

        if self._starting:
            self._mark_up(ray.wait(list(self._starting.values()), num_returns=len(self._starting), timeout=0)[0])
        now = time.monotonic()
        for index, actor in self._actors.items():
            if index not in self._requests:
                started = None if index in self._starting else now
                self._requests[index] = _Request(actor.sample_with_metrics.remote(), self._versions[index], started)

    def _seconds_to_first_deadline(self, timeout_s: float) -> float:
        """How long to wait for a fragment before some request times out (at most `timeout_s`)."""
        starts = [r.started for r in self._requests.values() if r.started is not None]
        if not starts:
            return timeout_s
        return max(0.0, min(starts) + timeout_s - time.monotonic()) + 1e-3

    def sync_weights(self, weights: Mapping[str, Any], version: int | None = None, wait: bool = True) -> None:
        """One object-store put; every runner reads the same copy.

        `wait=False` only queues the new weights: a runner busy sampling loads
        them before its next fragment, which is then tagged with `version`.
        """
        import ray

        self._weights_ref = ray.put(dict(weights))
        if version is not None:
            self.weights_version = version
            self._versions = dict.fromkeys(self._actors, version)
        refs = {i: a.set_weights.remote(self._weights_ref) for i, a in self._actors.items()}
        if wait:
            self._gather(refs)

    def get_metrics(self) -> dict[str, list[float]]:
        """Episodes the runners finished since the last call, merged."""
        merged: dict[str, Any] = {}
        for metrics in self._metrics:
            for key, values in metrics.items():
                if isinstance(values, Mapping):  # a multi-agent runner's returns per agent and per module
                    for name, per_name in values.items():
                        merged.setdefault(key, {}).setdefault(name, []).extend(per_name)
                else:
                    merged.setdefault(key, []).extend(values)
        self._metrics = []
        return merged

    def get_state(self) -> dict[str, Any]:
        """Every runner's state by worker index, and the merged normalisation statistics (if on)."""
        state: dict[str, Any] = {
            str(i): s for i, s in self._gather({i: a.get_state.remote() for i, a in self._actors.items()}).items()
        }
        if self._normalization_enabled:
            state[NORMALIZATION_KEY] = self.get_normalization()
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore each runner from its entry; a state without merged statistics (older rlrun) keeps them fresh."""
        import ray

        if self._normalization_enabled and NORMALIZATION_KEY in state:
            self._normalization.set_state(state[NORMALIZATION_KEY])
            self._normalization_ref = ray.put(self._normalization.get_state())
        self._gather({i: a.set_state.remote(state[str(i)]) for i, a in self._actors.items() if str(i) in state})

    def _mark_up(self, ready: list[Any]) -> None:
        """The starting runners whose `__ray_ready__` call is among `ready` are up: the clocks of their requests in
        flight start now."""
        now, answered = time.monotonic(), set(ready)
        for index, ref in list(self._starting.items()):
            if ref in answered:
                del self._starting[index]
                if index in self._requests:
                    self._requests[index].started = now

    def _await_replacements(self) -> None:
        """Wait until every starting runner is up, saying so each `sample_timeout_s`. No deadline: a replacement
        may wait for the cluster to free or add resources, and it joins the next iteration, so runs reproduce."""
        import ray

        timeout_s = self.spec.sample_timeout_s
        waited = 0.0
        while self._starting:
            self._mark_up(ray.wait(list(self._starting.values()), num_returns=len(self._starting),
                                   timeout=timeout_s)[0])
            if self._starting:
                waited += timeout_s
                free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
                log.warning("env runner(s) %s still starting after %g s (the cluster has %s free)",
                            sorted(self._starting), waited, free or "no CPU")

    def _gather(self, refs: Mapping[int, Any]) -> dict[int, Any]:
        """Results of the runners that answered within `sample_timeout_s`; each failed or hung runner is replaced."""
        import ray

        self._await_replacements()
        timeout_s = self.spec.sample_timeout_s
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        answered = set(ready)
        results = {}
        for index, ref in refs.items():
            if ref not in answered:
                self._restart(index, _hung(timeout_s))
                continue
            try:
                results[index] = ray.get(ref)
            except ray.exceptions.RayError as error:
                self._restart(index, error)
        return results

    def _restart(self, index: int, error: Exception) -> None:
        import ray

        reason = _first_line(error)
        limit = self.spec.max_restarts
        if self.num_restarts >= limit:
            raise EnvRunnerFailure(f"env runner {index} failed after {self.num_restarts} restarts "
                                   f"(env_runners.max_restarts={limit}): {reason}") from None
        log.warning("env runner %d failed (%s); restarting it", index, reason)
        with contextlib.suppress(ray.exceptions.RayError):
            ray.kill(self._actors[index])
        self.num_restarts += 1
        self._actors[index] = self._start(index)
        self._versions[index] = self.weights_version
        self._requests.pop(index, None)
        if self._normalization_ref is not None:
            self._actors[index].sync_normalization.remote(self._normalization_ref)
        if self._weights_ref is not None:
            # Queued before its next sample, so the replacement never samples with initial weights.
            self._actors[index].set_weights.remote(self._weights_ref)

    def stop(self) -> None:
        import ray

        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            ray.get([a.stop.remote() for a in self._actors.values()], timeout=10)
        for actor in self._actors.values():
            ray.kill(actor)


def _hung(timeout_s: float) -> TimeoutError:
    return TimeoutError(f"no answer within env_runners.sample_timeout_s={timeout_s:g} s; the runner seems hung")


def _first_line(error: Exception) -> str:
    """The user-facing cause of a Ray error (its own first line, or the remote exception's last line)."""
    cause = getattr(error, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__

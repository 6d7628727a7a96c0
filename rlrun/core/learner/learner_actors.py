"""N Learner actors on Ray that train as one DDP process group.

The actors are placed with a placement group (one bundle of
`num_cpus_per_learner` / `num_gpus_per_learner` each), so a run either gets
all its learners or fails fast. Ray gives each GPU learner its own device
(`CUDA_VISIBLE_DEVICES`), so inside an actor the learner always trains on
`cuda:0`. Rank 0 hosts the rendezvous; state, weights and checkpoints are read
from rank 0 and written to all ranks.

Fault tolerance: after every update, rank 0's full state (weights, optimizer
moments, learner variables, shuffling RNG) is queued as a snapshot behind it. When
a learner's process dies (killed, its node lost), the surviving ranks cannot go on
alone (their collectives wait for the dead one), so every actor is killed and the
group is rebuilt, a new process group included, from the newest snapshot; a
blocking update is then retried on the same batch, so it trains as it would have.
Past `max_num_learner_restarts` the group stops for good and answers state reads
from the last snapshot, so the run ends with a checkpoint of its last good state.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlrun.core.learner import distributed
from rlrun.core.learner.failures import LearnerFailure
from rlrun.core.learner.learner import Learner, load_learner_checkpoint, save_learner_checkpoint, state_components

if TYPE_CHECKING:
    from rlrun.core.learner.config import LearnerConfig

log = logging.getLogger("rlrun")
PLACEMENT_TIMEOUT_S = 60.0
# Async updates queued per learner before `update(async_update=True)` waits for the oldest.
MAX_REQUESTS_IN_FLIGHT = 2
# After one rank failed, how long the others get to fail too (a rank whose peer died fails its collective), so a
# dead process is told apart from an error in the loss, which every rank raises and no restart would cure.
PEERS_FAIL_WITHIN_S = 10.0


class LearnerActor:
    """One rank: a Learner plus the process-group plumbing around it (runs inside a Ray actor)."""

    def __init__(
        self, config: LearnerConfig, observation_space: gym.Space, action_space: gym.Space, world_size: int
    ) -> None:
        self._learner: Learner = config.get_learner_class()(
            config=config, observation_space=observation_space, action_space=action_space
        )
        self._world_size = world_size
        self._listener: socket.socket | None = None

    def rendezvous_address(self) -> tuple[str, int]:
        """Called on rank 0: open the process group's store socket on this node's IP."""
        self._listener, address, port = distributed.listen_on_node_ip()
        return address, port

    def setup(self, backend: str, address: str, port: int, rank: int) -> None:
        """Join the process group (if there is more than one rank), then build the learner inside it."""
        if self._world_size > 1:
            listener = self._listener if rank == 0 else None
            distributed.init_process_group(backend, address, port, rank, self._world_size, listener)
        self._learner.build()

    def update(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> dict[str, Any]:
        return self._learner.update(batch=batch, timesteps=timesteps)

    def update_from_dataset(self, timesteps: Mapping[str, int] | None) -> dict[str, Any]:
        """Offline learners (rlrun.algorithms.offline) read their rows themselves."""
        return self._learner.update_from_dataset(timesteps=timesteps)

    def get_state(self, components: Any = None) -> dict[str, Any]:
        return self._learner.get_state(components)

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._learner.set_state(state)

    def snapshot(self) -> tuple[dict[str, Any], Any]:
        """State and shuffling RNG in one call: what a rebuilt group restores."""
        return self._learner.get_state(), self._learner.get_rng_state()

    def set_rng_state(self, state: Any) -> None:
        self._learner.set_rng_state(state)

    def device(self) -> str:
        return str(self._learner.device)

    def stop(self) -> None:
        distributed.destroy_process_group()


class _LearnerDied(Exception):
    """A learner actor's process is gone (the Ray error says which and why)."""


class LearnerActors:
    """The remote half of LearnerGroup: create, address, rebuild after a failure, and tear down the DDP actors."""

    def __init__(self, *, config: LearnerConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        from rlrun.cluster import RunResources, ensure_ray

        ensure_ray(RunResources(num_learners=config.num_learners, num_cpus_per_learner=config.num_cpus_per_learner,
                                num_gpus_per_learner=config.num_gpus_per_learner))
        self._config, self._spaces = config, (observation_space, action_space)
        self.num_restarts = 0
        self._start()
        self._in_flight: collections.deque[list[Any]] = collections.deque()
        # `snapshot()` refs queued on rank 0 after each update, newest last; an older one still answers if rank 0
        # died before running the newer ones. `_final` holds the last one once the group has stopped for good.
        self._snapshots: collections.deque[Any] = collections.deque(maxlen=MAX_REQUESTS_IN_FLIGHT + 2)
        self._final: tuple[dict[str, Any], Any] | None = None

    def _start(self) -> None:
        """Place the actors (one bundle each, all or none) and join them into one process group."""
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from rlrun.cluster import ClusterError
        from rlrun.cluster.session import ddp_backend

        config, n = self._config, self._config.num_learners
        bundle = {"CPU": config.num_cpus_per_learner}
        if config.num_gpus_per_learner:
            bundle["GPU"] = config.num_gpus_per_learner
        self._placement_group = placement_group([dict(bundle) for _ in range(n)], strategy="PACK")
        if not self._placement_group.wait(timeout_seconds=PLACEMENT_TIMEOUT_S):
            remove_placement_group(self._placement_group)
            raise ClusterError(
                f"could not place learners.num={n} learners with {bundle} each within {PLACEMENT_TIMEOUT_S:g} s; "
                f"the Ray cluster has {ray.available_resources()} free"
            )
        actor_cls = ray.remote(LearnerActor)
        self._actors = [
            actor_cls.options(
                num_cpus=config.num_cpus_per_learner,
                num_gpus=config.num_gpus_per_learner,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=self._placement_group, placement_group_bundle_index=rank
                ),
            ).remote(config, *self._spaces, n)
            for rank in range(n)
        ]
        # A single learner forms no process group, so it opens no rendezvous socket.
        address, port = ray.get(self._actors[0].rendezvous_address.remote()) if n > 1 else ("", 0)
        backend = ddp_backend(config.num_gpus_per_learner)
        ray.get([a.setup.remote(backend, address, port, rank) for rank, a in enumerate(self._actors)])
        self.devices: list[str] = ray.get([a.device.remote() for a in self._actors])

    def update(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Every rank gets the whole batch (one object-store put) and trains on its shard; blocks.

        If a learner dies meanwhile, the group is rebuilt from the state before this update and trains on the
        same batch again.
        """
        while True:
            refs = self._submit(batch, timesteps)
            try:
                return self._get(refs)
            except _LearnerDied as died:
                self._rebuild(died)

    def update_async(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Queue an update; return rank 0's results of the earlier queued updates that have finished.

        Actors run their calls in order, so queued updates apply one after the
        other. With `MAX_REQUESTS_IN_FLIGHT` queued, this waits for the oldest:
        backpressure instead of dropping batches. If a learner dies, the updates in flight are dropped (an
        asynchronous algorithm trains on whatever arrives) and the group is rebuilt from the newest state.
        """
        import ray

        self._in_flight.append(self._submit(batch, timesteps))
        finished: list[dict[str, Any]] = []
        while self._in_flight:
            refs = self._in_flight[0]
            must_wait = len(self._in_flight) > MAX_REQUESTS_IN_FLIGHT
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            if len(ready) < len(refs) and not must_wait and not _any_failed(ready):
                break
            try:
                finished.append(self._get(self._in_flight.popleft())[0])
            except _LearnerDied as died:
                self._in_flight.clear()
                self._rebuild(died)
        return finished

    def _submit(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[Any]:
        import ray

        batch_ref = ray.put(batch)
        refs = [a.update.remote(batch_ref, dict(timesteps or {})) for a in self._actors]
        self._snapshot()
        return refs

    def update_from_dataset(self, timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Every rank reads and trains on its own dataset shard; nothing travels from the driver. Blocks.

        After a learner died, the rebuilt group starts its dataset shards over (their read position is not
        part of the snapshot).
        """
        while True:
            refs = [a.update_from_dataset.remote(dict(timesteps or {})) for a in self._actors]
            self._snapshot()
            try:
                return self._get(refs)
            except _LearnerDied as died:
                self._rebuild(died)

    def _snapshot(self) -> None:
        """Queue rank 0's state behind its update: the newest state to rebuild from if a learner dies."""
        self._snapshots.append(self._actors[0].snapshot.remote())

    def _get(self, refs: list[Any]) -> list[Any]:
        """Every rank's answer; _LearnerDied if a rank's process died (the others' errors then follow from it)."""
        import ray

        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(ready[0])
            except ray.exceptions.RayActorError as error:
                raise _LearnerDied(error) from None
            except ray.exceptions.RayTaskError:
                ray.wait(pending, num_returns=len(pending), timeout=PEERS_FAIL_WITHIN_S)
                for ref in pending:
                    with contextlib.suppress(ray.exceptions.RayTaskError, ray.exceptions.GetTimeoutError):
                        try:
                            ray.get(ref, timeout=0)
                        except ray.exceptions.RayActorError as error:
                            raise _LearnerDied(error) from None
                raise
        return ray.get(refs)

    def _rebuild(self, died: _LearnerDied) -> None:
        """A new group from the newest snapshot that answers; past the restart limit, LearnerFailure."""
        reason = _first_line(died.args[0])
        self._kill()  # first: a surviving rank blocked in a collective would never run its queued snapshot
        state, rng = self._newest_snapshot()
        limit = self._config.max_num_learner_restarts
        if self.num_restarts >= limit:
            self._final = (state, rng)
            raise LearnerFailure(f"a learner actor died after {self.num_restarts} restarts "
                                 f"(learners.max_restarts={limit}): {reason}")
        self.num_restarts += 1
        log.warning("a learner actor died (%s); rebuilding the %d learner(s) from the newest learner state",
                    reason, self._config.num_learners)
        self._start()
        self._restore(state, rng)

    def _newest_snapshot(self) -> tuple[dict[str, Any], Any]:
        import ray

        for ref in reversed(self._snapshots):
            with contextlib.suppress(ray.exceptions.RayError):
                return ray.get(ref)
        raise LearnerFailure("a learner actor died before any of its updates finished; nothing to rebuild from")

    def get_state(self, components: Any = None) -> dict[str, Any]:
        import ray

        if self._final is not None:
            return {k: self._final[0][k] for k in state_components(components)}
        return ray.get(self._actors[0].get_state.remote(components))

    def set_state(self, state: Mapping[str, Any]) -> None:
        import ray

        state_ref = ray.put(dict(state))
        ray.get([a.set_state.remote(state_ref) for a in self._actors])

    def save_to_path(self, path: str | Path) -> Path:
        """Rank 0's state, written by this process, so the checkpoint lands where the driver runs (the last good
        state once the group has stopped for good)."""
        import ray

        if self._final is not None:
            return save_learner_checkpoint(path, *self._final)
        return save_learner_checkpoint(path, *ray.get(self._actors[0].snapshot.remote()))

    def restore_from_path(self, path: str | Path) -> None:
        self._restore(*load_learner_checkpoint(path))

    def _restore(self, state: Mapping[str, Any], rng: Any) -> None:
        """Every rank continues from `state` and the shuffling RNG `rng` (a checkpoint's, or a snapshot's)."""
        import ray

        self.set_state(state)
        ray.get([a.set_rng_state.remote(rng) for a in self._actors])

    def stop(self) -> None:
        """Leave the process group, then free the actors and their placement group."""
        import ray

        # A rank that is already gone has nothing left to release.
        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            ray.get([a.stop.remote() for a in self._actors], timeout=30)
        self._kill()

    def _kill(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._placement_group is not None:
            remove_placement_group(self._placement_group)
            self._placement_group = None


def _any_failed(refs: list[Any]) -> bool:
    """Whether any of these finished calls raised (a rank died while its peers still wait in a collective)."""
    import ray

    for ref in refs:
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.RayError:
            return True
    return False


def _first_line(error: BaseException) -> str:
    """A Ray actor error's cause in one line (its message is a paragraph about the actor)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__

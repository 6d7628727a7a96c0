"""N Learner actors on Ray that train as one DDP process group.

The actors are placed with a placement group (one bundle of
`num_cpus_per_learner` / `num_gpus_per_learner` each), so a run either gets
all its learners or fails fast. Ray gives each GPU learner its own device
(`CUDA_VISIBLE_DEVICES`), so inside an actor the learner always trains on
`cuda:0`. Rank 0 hosts the rendezvous; state, weights and checkpoints are read
from rank 0 and written to all ranks.
"""

from __future__ import annotations

import collections
import contextlib
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlrun.core.learner import distributed
from rlrun.core.learner.learner import Learner, load_learner_checkpoint, save_learner_checkpoint

if TYPE_CHECKING:
    from rlrun.core.learner.config import LearnerConfig

PLACEMENT_TIMEOUT_S = 60.0
# Async updates queued per learner before `update(async_update=True)` waits for the oldest.
MAX_REQUESTS_IN_FLIGHT = 2


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

    def get_rng_state(self) -> Any:
        return self._learner.get_rng_state()

    def set_rng_state(self, state: Any) -> None:
        self._learner.set_rng_state(state)

    def device(self) -> str:
        return str(self._learner.device)

    def stop(self) -> None:
        distributed.destroy_process_group()


class LearnerActors:
    """The remote half of LearnerGroup: create, address and tear down the DDP learner actors."""

    def __init__(self, *, config: LearnerConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from rlrun.cluster import ClusterError, RunResources, ensure_ray
        from rlrun.cluster.session import ddp_backend

        ensure_ray(RunResources(num_learners=config.num_learners, num_cpus_per_learner=config.num_cpus_per_learner,
                                num_gpus_per_learner=config.num_gpus_per_learner))
        n = config.num_learners
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
            ).remote(config, observation_space, action_space, n)
            for rank in range(n)
        ]
        # A single learner forms no process group, so it opens no rendezvous socket.
        address, port = ray.get(self._actors[0].rendezvous_address.remote()) if n > 1 else ("", 0)
        backend = ddp_backend(config.num_gpus_per_learner)
        ray.get([a.setup.remote(backend, address, port, rank) for rank, a in enumerate(self._actors)])
        self.devices: list[str] = ray.get([a.device.remote() for a in self._actors])
        self._in_flight: collections.deque[list[Any]] = collections.deque()

    def update(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Every rank gets the whole batch (one object-store put) and trains on its shard; blocks."""
        import ray

        return ray.get(self._submit(batch, timesteps))

    def update_async(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Queue an update; return rank 0's results of the earlier queued updates that have finished.

        Actors run their calls in order, so queued updates apply one after the
        other. With `MAX_REQUESTS_IN_FLIGHT` queued, this waits for the oldest:
        backpressure instead of dropping batches.
        """
        import ray

        self._in_flight.append(self._submit(batch, timesteps))
        finished: list[dict[str, Any]] = []
        while self._in_flight:
            refs = self._in_flight[0]
            must_wait = len(self._in_flight) > MAX_REQUESTS_IN_FLIGHT
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=None if must_wait else 0)
            if len(ready) < len(refs):
                break
            finished.append(ray.get(self._in_flight.popleft())[0])
        return finished

    def _submit(self, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None) -> list[Any]:
        import ray

        batch_ref = ray.put(batch)
        return [a.update.remote(batch_ref, dict(timesteps or {})) for a in self._actors]

    def update_from_dataset(self, timesteps: Mapping[str, int] | None) -> list[dict[str, Any]]:
        """Every rank reads and trains on its own dataset shard; nothing travels from the driver. Blocks."""
        import ray

        return ray.get([a.update_from_dataset.remote(dict(timesteps or {})) for a in self._actors])

    def get_state(self, components: Any = None) -> dict[str, Any]:
        import ray

        return ray.get(self._actors[0].get_state.remote(components))

    def set_state(self, state: Mapping[str, Any]) -> None:
        import ray

        state_ref = ray.put(dict(state))
        ray.get([a.set_state.remote(state_ref) for a in self._actors])

    def save_to_path(self, path: str | Path) -> Path:
        """Rank 0's state, written by this process, so the checkpoint lands where the driver runs."""
        import ray

        state, rng = ray.get([self._actors[0].get_state.remote(), self._actors[0].get_rng_state.remote()])
        return save_learner_checkpoint(path, state, rng)

    def restore_from_path(self, path: str | Path) -> None:
        import ray

        state, rng = load_learner_checkpoint(path)
        self.set_state(state)
        ray.get([a.set_rng_state.remote(rng) for a in self._actors])

    def stop(self) -> None:
        """Leave the process group, then free the actors and their placement group."""
        import ray
        from ray.util.placement_group import remove_placement_group

        # A rank that is already gone has nothing left to release.
        with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
            ray.get([a.stop.remote() for a in self._actors], timeout=30)
        for actor in self._actors:
            ray.kill(actor)
        remove_placement_group(self._placement_group)

"""EnvRunnerGroup: the algorithm's one handle on sampling, however many EnvRunners exist.

`num_env_runners=0` samples with one EnvRunner in this process; `>=1` samples
in parallel with that many EnvRunner actors on Ray (`EnvRunnerActors`, fault
tolerant). Callers use only the methods below, so an algorithm never knows
which one it drives.

Synchronous algorithms call `sample()` (one fragment from every runner,
merged); asynchronous ones call `sample_async()` (whatever fragments are
ready, each tagged with its weights version) and `sync_weights(...,
version=v, wait=False)`, which never stops a runner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlrun.core.checkpointing import CheckpointError
from rlrun.core.columns import BOOTSTRAP_COLUMNS, Columns
from rlrun.env.env_creation import make_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_runner_actors import Fragment
from rlrun.env.multi_agent.creation import make_parallel_env
from rlrun.env.multi_agent.env_runner import MultiAgentBatch
from rlrun.env.multi_agent.mapping import ModuleSpaces
from rlrun.env.normalization import NORMALIZATION_KEY

if TYPE_CHECKING:
    from rlrun.env.runner_spec import EnvRunnerGroupSpec, EnvRunnerSpec


class EnvRunnerGroup:
    """Owns the EnvRunners of an algorithm and merges what they sample."""

    def __init__(self, spec: EnvRunnerGroupSpec) -> None:
        self.spec = spec
        self._local: EnvRunner | None = None
        self._remote = None
        self._local_version = 0
        if spec.num_env_runners > 0:
            from rlrun.env.env_runner_actors import EnvRunnerActors

            # The samplers are elsewhere; this env only tells the learners (and the normalisation) its spaces.
            self._spaces_env = spaces_env(spec.runner)
            self._remote = EnvRunnerActors(spec, _normalized_space(self._spaces_env))
        else:
            self._local = make_env_runner(spec.runner)
            self._spaces_env = self._local.env

    @property
    def env(self) -> gym.Env | gym.vector.VectorEnv:
        """An env of the group, for its observation and action spaces."""
        return self._spaces_env

    @property
    def num_healthy_env_runners(self) -> int:
        """Runners whose samples made it into the last batch."""
        return self._remote.num_healthy if self._remote else 1

    @property
    def num_restarts(self) -> int:
        """Failed runner actors replaced so far in this run."""
        return self._remote.num_restarts if self._remote else 0

    def sample(self) -> tuple[dict[str, np.ndarray], int]:
        """One fragment from every runner, merged on the env axis; also returns the real env steps."""
        batch = self._local.sample() if self._local else concat_env_axis(self._remote.sample())
        return batch, env_steps(batch)

    @property
    def is_remote(self) -> bool:
        return self._remote is not None

    @property
    def weights_version(self) -> int:
        """The version of the weights sent last (`sync_weights(..., version=)`)."""
        return self._remote.weights_version if self._remote else self._local_version

    @property
    def num_sample_requests_in_flight(self) -> int:
        return self._remote.num_requests_in_flight if self._remote else 0

    def sample_async(self) -> list[Fragment]:
        """The fragments ready now, at least one, each with the weights version that sampled it.

        Remote runners always have a request in flight (no barrier across them);
        one silent for `env_runners.sample_timeout_s` is replaced. The local runner samples one
        fragment on the spot.
        """
        if self._local:
            return [Fragment(self._local.sample(), self._local_version)]
        fragments: list[Fragment] = []
        while not fragments:  # all that were ready had failed: ask their replacements
            fragments = self._remote.sample_async(self.spec.sample_timeout_s)
        return fragments

    def sync_weights(self, weights: Mapping[str, Any], *, version: int | None = None, wait: bool = True) -> None:
        """Send the learners' module weights to every runner.

        `version` tags the fragments sampled with them; `wait=False` returns at
        once and lets busy runners load the weights after their current fragment.
        """
        if self._local:
            self._local.set_weights(weights)
            if version is not None:
                self._local_version = version
        else:
            self._remote.sync_weights(weights, version=version, wait=wait)

    def get_metrics(self) -> dict[str, list[float]]:
        return self._local.get_metrics() if self._local else self._remote.get_metrics()

    def get_normalization(self) -> dict[str, Any]:
        """The group's normalisation statistics (the local runner's, or the driver's merge of the remote ones'),
        for an evaluation runner (`EnvRunner.sync_normalization`); empty with normalisation off."""
        return self._local.get_normalization() if self._local else self._remote.get_normalization()

    def get_state(self) -> dict[str, Any]:
        if self._local:
            return {"local": self._local.get_state()}
        return {"remote": self._remote.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continue from `get_state()` of a group with the same env_runners.num."""
        mode = "local" if self._local else "remote"
        if mode not in state:
            raise CheckpointError(f"the env-runner state was saved with env_runners.num "
                                  f"{'> 0' if mode == 'local' else '= 0'}; restore it with the same env_runners.num")
        if self._local:
            self._local.set_state(state["local"])
        else:
            self._remote.set_state(state["remote"])

    def stop(self) -> None:
        if self._local:
            self._local.stop()
        else:
            self._remote.stop()
            if isinstance(self._spaces_env, gym.Env):
                self._spaces_env.close()


def make_env_runner(spec: EnvRunnerSpec, worker_index: int = 0) -> EnvRunner:
    """The env runner of `spec`: a gymnasium vector env, or copies of a PettingZoo env (`spec.multi_agent`),
    played one mover at a time if it is a turn-based game."""
    if spec.multi_agent is not None:
        from rlrun.env.multi_agent.creation import is_turn_based_env
        from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner
        from rlrun.env.multi_agent.turn_based import TurnBasedEnvRunner

        turn_based = is_turn_based_env(spec.env.id, spec.env.env_config)
        return (TurnBasedEnvRunner if turn_based else MultiAgentEnvRunner)(spec, worker_index=worker_index)
    return EnvRunner(spec, worker_index=worker_index)


def normalization_in_state(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The group's normalisation statistics in a `get_state()` (a checkpoint's env_runners.pt); None if it has
    none (normalisation off, or saved by an older rlrun)."""
    if "local" in state:
        return state["local"].get(NORMALIZATION_KEY, {}).get("stats")
    return state.get("remote", {}).get(NORMALIZATION_KEY)


def spaces_env(spec: EnvRunnerSpec) -> gym.Env | ModuleSpaces:
    """An env (or a multi-agent env's per-module spaces) that only tells its spaces: to the learners of a Ray
    run, and to `rlrun.load` for a checkpoint that does not hold them (format 2)."""
    if spec.multi_agent is None:
        return make_env(spec.env)
    env = make_parallel_env(spec.env.id, spec.env.env_config)
    try:
        mapping = spec.multi_agent.build(env)
    finally:
        env.close()
    return ModuleSpaces(mapping.observation_spaces(), mapping.action_spaces())


def _normalized_space(spaces: gym.Env | ModuleSpaces) -> gym.Space:
    """The observation space normalisation keeps statistics of (multi-agent runs do not normalise)."""
    space = spaces.observation_space
    return next(iter(space.values())) if isinstance(space, gym.spaces.Dict) else space


def env_steps(batch: Mapping[str, Any]) -> int:
    """The env steps a sampled batch holds: rows not masked (autoreset steps are not env steps), or a
    multi-agent batch's copy steps (one per step of an env copy, however many agents acted)."""
    return batch.env_steps if isinstance(batch, MultiAgentBatch) else int(batch[Columns.LOSS_MASK].sum())


def env_slots(batch: Mapping[str, Any]) -> int:
    """T x B of a sampled batch: its env steps plus its autoreset (and multi-agent reset) rows."""
    return batch.env_slots if isinstance(batch, MultiAgentBatch) else batch[Columns.LOSS_MASK].size


def concat_env_axis(batches: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge time-major `[T, B, ...]` fragments of equal T along B (the bootstrap obs along its env axis);
    multi-agent batches module by module."""
    if isinstance(batches[0], MultiAgentBatch):
        return MultiAgentBatch({m: concat_env_axis([b[m] for b in batches]) for m in batches[0]},
                               sum(b.env_steps for b in batches), sum(b.env_slots for b in batches))
    return {
        key: np.concatenate([b[key] for b in batches], axis=0 if key in BOOTSTRAP_COLUMNS.values() else 1)
        for key in batches[0]
    }

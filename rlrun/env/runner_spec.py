"""The specs env runners are built from: what to sample, with which module, how many envs, how normalised.

`AlgorithmConfig.env_runner_spec()` and `env_runner_group_spec()` build them from a run's config; `EnvRunner`,
`MultiAgentEnvRunner`, `Normalizer` and `EnvRunnerGroup` read only these, never the algorithm's config, so
sampling can be set up (in a Ray actor, in `rlrun-eval`, in a test) from plain, picklable data. Whether the env
is multi-agent is decided once, when the spec is built: `EnvRunnerSpec.multi_agent` is its policy mapping, or
None for a gymnasium env.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from rlrun.config.schema import AlgoSchema, EnvRunnersSchema
from rlrun.core.rl_module.spec import RLModuleSpec
from rlrun.env.env_spec import EnvSpec
from rlrun.env.multi_agent.mapping import PolicyMappingSpec

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NormalizationSpec:
    """Observation filter and reward scaling (`env_runners.*` keys; see `rlrun.env.normalization`).

    The defaults are the keys' defaults: no normalisation.
    """

    observation_filter: str = EnvRunnersSchema.observation_filter
    normalize_rewards: bool = EnvRunnersSchema.normalize_rewards
    clip_observations: float = EnvRunnersSchema.clip_observations
    clip_normalized_rewards: float = EnvRunnersSchema.clip_normalized_rewards
    # The discount of the return whose running std scales the rewards (`algo.gamma`).
    gamma: float = AlgoSchema.gamma


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvRunnerSpec:
    """One env runner: its env, its module, and how it samples.

    `seed` is the run's; runner `worker_index` seeds with `seed + WORKER_SEED_STRIDE * worker_index`.
    `num_threads` is the torch thread count of the runner's forward passes: a Ray actor's for good, a runner
    in the driver's process (embedded mode) while it samples (`sampling_threads`), the local learner's
    count being restored after.
    """

    env: EnvSpec
    module: RLModuleSpec
    rollout_fragment_length: int
    num_envs: int = 1
    seed: int = 0
    normalization: NormalizationSpec = NormalizationSpec()
    # The agent -> module mapping of a PettingZoo env; None: a gymnasium env.
    multi_agent: PolicyMappingSpec | None = None
    num_threads: int = 1
    # `callbacks=[pkg.module:Class, ...]`: names, so each runner (a Ray actor too) builds its own instances.
    callbacks: tuple[str, ...] = ()

    def replace(self, **changes: object) -> EnvRunnerSpec:
        """A copy with `changes` (a restarted runner's seed, an evaluation runner's env)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvRunnerGroupSpec:
    """The runners of an EnvRunnerGroup: `num_env_runners` Ray actors of `runner` (0: one in this process),
    each reserving `num_cpus_per_env_runner`, replaced up to `max_restarts` times in a run, and taken for hung
    (and replaced) after `sample_timeout_s` without an answer."""

    runner: EnvRunnerSpec
    num_env_runners: int = EnvRunnersSchema.num
    num_cpus_per_env_runner: float = EnvRunnersSchema.num_cpus_per_env_runner
    max_restarts: int = EnvRunnersSchema.max_restarts
    sample_timeout_s: float = EnvRunnersSchema.sample_timeout_s


def sampling_threads(sample: Callable[..., T]) -> Callable[..., T]:
    """Run an env runner's `sample` with its own torch thread count (`EnvRunnerSpec.num_threads`), then the
    caller's again. In embedded mode the runner shares its process with the local learner, whose CNN updates
    want every core, while a forward pass over a few envs' frames is fastest on one thread: spare threads only
    synchronise, and spin against the env for the cores."""

    @functools.wraps(sample)
    def with_threads(self: Any, *args: Any, **kwargs: Any) -> T:
        before, wanted = torch.get_num_threads(), self.spec.num_threads
        if before == wanted:
            return sample(self, *args, **kwargs)
        torch.set_num_threads(wanted)
        try:
            return sample(self, *args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return with_threads

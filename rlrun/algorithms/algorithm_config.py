"""AlgorithmConfig: RLlib's fluent builder, with defaults taken from the Hydra schemas.

Each section method (`environment`, `env_runners`, `learners`, `training`,
`rl_module`, `debugging`) sets attributes and returns the config. `validate()`
checks ranges and consistency and raises `ConfigError` naming the YAML key a
CLI user would type, so both entry points share one set of checks and messages.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym

from rlrun.callbacks import Callback, check_callbacks
from rlrun.config.errors import ConfigError, check
from rlrun.config.fields import check_fields
from rlrun.config.imports import import_class
from rlrun.config.schema import (
    AlgoSchema,
    EnvRunnersSchema,
    EnvSchema,
    LearnersSchema,
    ModelSchema,
    MultiAgentSchema,
    OfflineSchema,
)
from rlrun.core.columns import Columns
from rlrun.core.rl_module.custom import DIST_INPUTS, PER_ROW, ModuleContract, check_module

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm import Algorithm
    from rlrun.cluster import RunResources
    from rlrun.core.learner import Learner, LearnerGroup
    from rlrun.core.rl_module import RLModuleSpec
    from rlrun.env.env_spec import EnvSpec
    from rlrun.env.multi_agent.mapping import PolicyMapping, PolicyMappingSpec
    from rlrun.env.runner_spec import EnvRunnerGroupSpec, EnvRunnerSpec, NormalizationSpec


MAX_NUMPY_SEED = 2**32 - 1

# The run sections the builder holds (as attributes, or `model_config`), checked against their schemas' ranges.
_SECTION_SCHEMAS: dict[str, type] = {"env": EnvSchema, "learners": LearnersSchema, "env_runners": EnvRunnersSchema,
                                     "model": ModelSchema}
# Builder attributes named after RLlib's builder arguments rather than the YAML key (the rest share the name).
_BUILDER_NAMES: dict[str, dict[str, str]] = {
    "env": {"id": "env", "backend": "env_backend", "wrappers": "env_wrappers"},
    "learners": {"num": "num_learners", "num_threads": "num_threads_per_learner",
                 "max_restarts": "max_num_learner_restarts"},
    "env_runners": {"num": "num_env_runners", "num_envs_per_runner": "num_envs_per_env_runner",
                    "max_restarts": "max_num_env_runner_restarts", "num_threads": "num_threads_per_env_runner"},
}


class AlgorithmConfig:
    """Builder for an algorithm; subclasses set `algo_class`, `schema` and the default learner."""

    algo_class: ClassVar[type[Algorithm]]
    schema: ClassVar[type[AlgoSchema]] = AlgoSchema
    # Action spaces the algorithm's loss handles (checked before anything is built).
    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (
        gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary, gym.spaces.Box)
    # Whether it trains on PettingZoo envs (a batch per module); algorithms with per-env state that is not
    # per module yet (replay buffers, recorded datasets) say False.
    supports_multi_agent: ClassVar[bool] = True
    # Whether its learner trains recurrent modules (`model.use_lstm`) on sequences.
    supports_recurrent: ClassVar[bool] = False
    # Whether its default module's Box-action policy is a Gaussian with a trained, state-independent log std (the
    # actor-critic's), which `model.log_std_init` starts; off-policy algorithms have their own policies.
    has_log_std_weight: ClassVar[bool] = True
    # Training keys a run can take new values of when it continues from a checkpoint (what Tune's PBT may
    # perturb): read afresh at every update, or (lr) re-applied to the restored optimizer state.
    mutable_keys: ClassVar[frozenset[str]] = frozenset({"lr", "gamma", "grad_clip", "num_epochs", "minibatch_size"})
    # What the learner reads from a user's `model.module_class` (checked in `validate`): by default the
    # actor-critic outputs of PPO's loss and the values of its GAE.
    module_contract: ClassVar[ModuleContract] = ModuleContract(
        {Columns.ACTION_DIST_INPUTS: DIST_INPUTS, Columns.VF_PREDS: PER_ROW}, methods=("compute_values",))

    def __init__(self) -> None:
        env, runners, learners = EnvSchema(), EnvRunnersSchema(), LearnersSchema()
        self.env: str = env.id
        self.env_config: dict[str, Any] = dict(env.env_config)
        self.max_episode_steps: int | None = env.max_episode_steps
        self.env_backend: str = env.backend
        self.env_wrappers: list[Any] = list(env.wrappers)
        # The `env.atari` keys (every key of AtariSchema), or None: no Atari preprocessing.
        self.atari: dict[str, Any] | None = None
        self.num_env_runners: int = runners.num
        self.num_envs_per_env_runner: int = runners.num_envs_per_runner
        self.rollout_fragment_length: int | str = runners.rollout_fragment_length
        self.num_cpus_per_env_runner: float = runners.num_cpus_per_env_runner
        self.max_num_env_runner_restarts: int = runners.max_restarts
        self.sample_timeout_s: float = runners.sample_timeout_s
        self.observation_filter: str = runners.observation_filter
        self.normalize_rewards: bool = runners.normalize_rewards
        self.clip_observations: float = runners.clip_observations
        self.clip_normalized_rewards: float = runners.clip_normalized_rewards
        self.num_threads_per_env_runner: int | None = runners.num_threads
        self.num_learners: int = learners.num
        self.num_gpus_per_learner: float = learners.num_gpus_per_learner
        self.num_cpus_per_learner: float = learners.num_cpus_per_learner
        self.num_threads_per_learner: int | None = learners.num_threads
        self.max_num_learner_restarts: int = learners.max_restarts
        self.max_non_finite_updates: int = learners.max_non_finite_updates
        self.model_config: dict[str, Any] = dataclasses.asdict(ModelSchema())
        offline = OfflineSchema()
        self.dataset: str | None = offline.dataset
        self.dataset_memory_rows: int = offline.memory_rows
        multi_agent = MultiAgentSchema()
        self.policies: str | list[str] = multi_agent.policies
        self.policy_mapping: dict[str, str] = dict(multi_agent.policy_mapping)
        self.policies_to_train: list[str] | None = multi_agent.policies_to_train
        self.init_from: str | None = multi_agent.init_from
        self.seed: int = 0
        self.learner_class: type[Learner] | str | None = None
        # `callbacks=[...]`: class names, from which the driver and every env runner build their own instances.
        self.callback_classes: list[str] = []
        for f in dataclasses.fields(self.schema):
            if f.name not in ("name", "learner_class"):
                setattr(self, f.name, getattr(self.schema(), f.name))

    # -- builder sections ------------------------------------------------------------

    def environment(
        self,
        env: str | None = None,
        env_config: Mapping[str, Any] | None = None,
        max_episode_steps: int | None = None,
        *,
        backend: str | None = None,
        wrappers: list[Any] | None = None,
        atari: bool | Mapping[str, Any] | None = None,
    ) -> AlgorithmConfig:
        """The env (`env.*` keys). `atari`: True = Atari preprocessing with AtariSchema's defaults, a mapping =
        those defaults with its keys changed, False = none; `wrappers`: the `env.wrappers` list."""
        if env is not None:
            self.env = env
        if env_config is not None:
            self.env_config = dict(env_config)
        if max_episode_steps is not None:
            self.max_episode_steps = max_episode_steps
        if backend is not None:
            self.env_backend = backend
        if wrappers is not None:
            self.env_wrappers = list(wrappers)
        if atari is not None:
            self.atari = _atari_keys(atari)
        return self

    def env_runners(
        self,
        num_env_runners: int | None = None,
        num_envs_per_env_runner: int | None = None,
        rollout_fragment_length: int | str | None = None,
        num_cpus_per_env_runner: float | None = None,
        sample_timeout_s: float | None = None,
        observation_filter: str | None = None,
        normalize_rewards: bool | None = None,
        clip_observations: float | None = None,
        clip_normalized_rewards: float | None = None,
        num_threads_per_env_runner: int | None = None,
    ) -> AlgorithmConfig:
        """Sampling resources, and the normalisation the runners apply (`rlrun.env.normalization`)."""
        return self._set(locals())

    def fault_tolerance(
        self,
        max_num_env_runner_restarts: int | None = None,
        max_num_learner_restarts: int | None = None,
        max_non_finite_updates: int | None = None,
    ) -> AlgorithmConfig:
        """How many times per run a failed EnvRunner actor is replaced, and the learner actors are rebuilt, before
        the run fails; how many gradient steps in a row may be non-finite (each is skipped) before it stops."""
        return self._set(locals())

    def learners(
        self,
        num_learners: int | None = None,
        num_gpus_per_learner: float | None = None,
        num_cpus_per_learner: float | None = None,
        num_threads_per_learner: int | None = None,
    ) -> AlgorithmConfig:
        return self._set(locals())

    def training(self, **kwargs: Any) -> AlgorithmConfig:
        """Training keys of the algorithm's schema (lr, gamma, ..., learner_class)."""
        allowed = {f.name for f in dataclasses.fields(self.schema)} - {"name"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ConfigError(f"unknown training key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        for key, value in kwargs.items():  # None is meaningful here: it disables grad_clip, vf_clip_param, ...
            setattr(self, key, value)
        return self

    def offline_data(self, dataset: str | None = None, memory_rows: int | None = None) -> AlgorithmConfig:
        """The Minari dataset (a directory or a local dataset id) offline algorithms train from."""
        if dataset is not None:
            self.dataset = dataset
        if memory_rows is not None:
            self.dataset_memory_rows = memory_rows
        return self

    def multi_agent(
        self,
        policies: str | list[str] | None = None,
        policy_mapping: Mapping[str, str] | None = None,
        policies_to_train: list[str] | None = None,
        init_from: str | None = None,
    ) -> AlgorithmConfig:
        """For a PettingZoo env: `shared`, `independent` or a list of policy ids mapped by agent-id patterns;
        `init_from`, a checkpoint directory whose modules start the modules of the same id."""
        if policies is not None:
            self.policies = policies if isinstance(policies, str) else list(policies)
        if policy_mapping is not None:
            self.policy_mapping = dict(policy_mapping)
        if policies_to_train is not None:
            self.policies_to_train = list(policies_to_train)
        if init_from is not None:
            self.init_from = str(init_from)
        return self

    def rl_module(self, model_config: Mapping[str, Any] | None = None) -> AlgorithmConfig:
        if model_config is not None:
            self.model_config.update(model_config)
        return self

    def callbacks(self, callbacks: Sequence[str | type[Callback]]) -> AlgorithmConfig:
        """The `callbacks` key: Callback subclasses, or their `pkg.module:Class` names (what the spec carries)."""
        self.callback_classes = callbacks if isinstance(callbacks, str) else [  # type: ignore[assignment]
            c if isinstance(c, str) else f"{c.__module__}:{c.__qualname__}" for c in callbacks]  # a str: refused
        return self

    def debugging(self, seed: int | None = None) -> AlgorithmConfig:
        return self._set(locals())

    def _set(self, values: Mapping[str, Any]) -> AlgorithmConfig:
        for key, value in values.items():
            if key != "self" and value is not None:
                setattr(self, key, value)
        return self

    def copy(self) -> AlgorithmConfig:
        return copy.deepcopy(self)

    def env_runner_spec(self) -> EnvRunnerSpec:
        """What every env runner of this config is built from (`rlrun.env.runner_spec`). Whether the env is
        multi-agent is decided here, once: telling a PettingZoo function's env apart builds it."""
        from rlrun.env.runner_spec import EnvRunnerSpec

        return EnvRunnerSpec(
            env=self.env_spec(), module=self.get_rl_module_spec(),
            rollout_fragment_length=self.get_rollout_fragment_length(), num_envs=self.num_envs_per_env_runner,
            seed=self.seed, multi_agent=self.policy_mapping_spec() if self.is_multi_agent else None,
            normalization=self.normalization_spec(),
            num_threads=self.env_runner_threads(),
            callbacks=tuple(self.callback_classes),
        )

    def normalization_spec(self) -> NormalizationSpec:
        """The normalisation the runners apply (`env_runners.observation_filter`, `normalize_rewards`, ...); also
        what `rlrun.load` filters observations with, without building an env."""
        from rlrun.env.runner_spec import NormalizationSpec

        return NormalizationSpec(
            observation_filter=self.observation_filter, normalize_rewards=self.normalize_rewards,
            clip_observations=self.clip_observations, clip_normalized_rewards=self.clip_normalized_rewards,
            gamma=self.gamma)

    def env_runner_group_spec(self) -> EnvRunnerGroupSpec:
        """The algorithm's EnvRunnerGroup: its runners' spec, how many and their resources, fault tolerance."""
        from rlrun.env.runner_spec import EnvRunnerGroupSpec

        return EnvRunnerGroupSpec(runner=self.env_runner_spec(), num_env_runners=self.num_env_runners,
                                  num_cpus_per_env_runner=self.num_cpus_per_env_runner,
                                  max_restarts=self.max_num_env_runner_restarts, sample_timeout_s=self.sample_timeout_s)

    def run_resources(self) -> RunResources:
        """What the run's env-runner and learner actors reserve on Ray (`rlrun.cluster`)."""
        from rlrun.cluster import RunResources

        return RunResources(num_env_runners=self.num_env_runners, num_cpus_per_env_runner=self.num_cpus_per_env_runner,
                            num_learners=self.num_learners, num_cpus_per_learner=self.num_cpus_per_learner,
                            num_gpus_per_learner=self.num_gpus_per_learner)

    def env_spec(self) -> EnvSpec:
        """The env as `rlrun.env` builds it (`make_env`, `make_vector_env`): id, constructor kwargs, TimeLimit,
        wrappers, backend and Atari preprocessing. `EnvError` if `env.wrappers` holds an item of another form."""
        from rlrun.env.env_spec import AtariSpec, EnvSpec, wrapper_specs

        return EnvSpec(id=self.env, env_config=dict(self.env_config), max_episode_steps=self.max_episode_steps,
                       wrappers=wrapper_specs(self.env_wrappers), backend=self.env_backend,
                       atari=None if self.atari is None else AtariSpec(**self.atari))

    # -- derived values ----------------------------------------------------------------

    @property
    def minibatch_size(self) -> int:
        """Rows per gradient step; null = `train_batch_size` (each update and epoch is one gradient step)."""
        return self.train_batch_size if self._minibatch_size is None else self._minibatch_size

    @minibatch_size.setter
    def minibatch_size(self, value: int | None) -> None:
        self._minibatch_size = value

    def get_rollout_fragment_length(self) -> int:
        """Steps per env per sample; "auto" splits `train_batch_size` over all envs."""
        if self.rollout_fragment_length == "auto":
            envs = max(1, self.num_env_runners) * self.num_envs_per_env_runner
            return math.ceil(self.train_batch_size / envs)
        return int(self.rollout_fragment_length)

    @property
    def is_multi_agent(self) -> bool:
        """Whether `env` is a PettingZoo env (see `rlrun.env.multi_agent.creation`)."""
        from rlrun.env.multi_agent.creation import is_multi_agent_env

        return is_multi_agent_env(self.env, self.env_config)

    def make_multi_agent_env(self) -> Any | None:
        """One ParallelEnv of `env`, or None if `env` is a single-agent (gymnasium) env."""
        from rlrun.env.multi_agent.creation import make_parallel_env

        return make_parallel_env(self.env, self.env_config)

    def build_policy_mapping(self, env: Any) -> PolicyMapping:
        """Agent -> module of a ParallelEnv under `multi_agent.*`; MappingError names what does not fit."""
        return self.policy_mapping_spec().build(env)

    def policy_mapping_spec(self) -> PolicyMappingSpec:
        """The `multi_agent.*` keys (and `model.central_value`) a multi-agent env's PolicyMapping is built from."""
        from rlrun.env.multi_agent.mapping import PolicyMappingSpec

        policies = self.policies if isinstance(self.policies, str) else tuple(self.policies)
        return PolicyMappingSpec(policies, dict(self.policy_mapping), bool(self.model_config.get("central_value")))

    def is_trained(self, module_id: str) -> bool:
        """Whether the learners update `module_id` (`multi_agent.policies_to_train`, null = every module)."""
        return self.policies_to_train is None or module_id in self.policies_to_train

    def get_learner_class(self) -> type[Learner]:
        if self.learner_class is None:
            return self.default_learner_class()
        if isinstance(self.learner_class, str):
            from rlrun.core.learner import Learner

            return import_class(self.learner_class, "algo.learner_class", Learner)
        return self.learner_class

    def default_learner_class(self) -> type[Learner]:
        raise NotImplementedError

    # -- builders ----------------------------------------------------------------------

    def learner_threads(self, images: bool) -> int:
        """torch threads of one learner (`learners.num_threads`, else the default its key's doc gives).

        A CNN's convolutions split well across cores, an MLP's small matrices do not: for them more threads
        only add synchronisation (and spin beside the sampler).
        """
        if self.num_threads_per_learner is not None:
            return self.num_threads_per_learner
        if not images:
            return 1
        if self.num_learners:
            return max(1, int(self.num_cpus_per_learner))
        return max(1, int(len(os.sched_getaffinity(0)) - self.num_env_runners * self.num_cpus_per_env_runner))

    def env_runner_threads(self) -> int:
        """torch threads of one env runner's forward passes: `env_runners.num_threads`, else its CPUs."""
        return self.num_threads_per_env_runner or max(1, int(self.num_cpus_per_env_runner))

    def observes_images(self) -> bool:
        """Whether any module sees image observations (the catalog builds a CNN), building the env once to know."""
        from rlrun.core.rl_module.catalog import is_image

        return any(is_image(obs) for obs, _ in self._env_spaces())

    def get_rl_module_spec(self) -> RLModuleSpec:
        """The module every env runner and learner builds (`RLModuleSpec.build`); subclasses name their class."""
        from rlrun.core.rl_module import DefaultActorCriticModule, RLModuleSpec
        from rlrun.core.rl_module.recurrent import is_recurrent

        if is_recurrent(self.model_config):
            from rlrun.core.rl_module.recurrent_actor_critic import RecurrentActorCriticModule

            return RLModuleSpec(RecurrentActorCriticModule, dict(self.model_config))
        return RLModuleSpec(DefaultActorCriticModule, dict(self.model_config))

    def build_algo(self) -> Algorithm:
        self.validate()
        return self.algo_class(self.copy())

    def build_learner(self, *, env: gym.Env | gym.vector.VectorEnv) -> Learner:
        """An unbuilt Learner for `env`'s spaces; call `.build()` on it."""
        obs_space, act_space = single_spaces(env)
        return self.get_learner_class()(config=self.copy(), observation_space=obs_space, action_space=act_space)

    def build_learner_group(self, *, env: gym.Env | gym.vector.VectorEnv) -> LearnerGroup:
        from rlrun.core.learner import LearnerGroup

        obs_space, act_space = single_spaces(env)
        return LearnerGroup(config=self.copy(), observation_space=obs_space, action_space=act_space)

    # -- validation --------------------------------------------------------------------

    def validate(self) -> None:
        """Raise ConfigError for the first out-of-range or inconsistent value.

        One-key ranges and choices are declared on the schema fields (`bounds=`, `choices=`) and checked by
        `check_fields`, the same ranges the docs show; what relates keys to each other is checked here.
        """
        self._validate_seed()
        check_callbacks(self.callback_classes)
        for section, schema in _SECTION_SCHEMAS.items():
            check_fields(schema, functools.partial(self._section_value, section), section)
        rfl = self.rollout_fragment_length
        check(rfl == "auto" or (isinstance(rfl, int) and not isinstance(rfl, bool) and rfl >= 1),
               "env_runners.rollout_fragment_length must be 'auto' or an integer >= 1", rfl)
        check(isinstance(self.normalize_rewards, bool), "env_runners.normalize_rewards must be true or false",
              self.normalize_rewards)
        check_fields(self.schema, lambda name: getattr(self, name), "algo")
        if self.lr_schedule is not None:
            check_schedule(self.lr_schedule, "algo.lr_schedule", "lr", starts_at=("algo.lr", self.lr))
        check(self.minibatch_size <= self.train_batch_size,
               f"algo.minibatch_size must be <= algo.train_batch_size ({self.train_batch_size})", self.minibatch_size)
        # Every DDP learner trains on its own slice of each minibatch.
        check(self.minibatch_size >= max(1, self.num_learners),
              f"algo.minibatch_size must be >= learners.num ({self.num_learners})", self.minibatch_size)
        self._validate_model()
        self._validate_env()
        self.get_learner_class()
        if self.num_gpus_per_learner > 0 and self.num_learners == 0:
            # A local learner trains on this machine's GPU; remote learners' GPUs are checked against the cluster.
            import torch

            check(torch.cuda.is_available(), "learners.num_gpus_per_learner > 0 with learners.num=0 needs a CUDA "
                  "device on this machine, none is visible", self.num_gpus_per_learner)

    def _section_value(self, section: str, key: str) -> Any:
        """The builder's value of the run-section key `<section>.<key>` (`env_runners.num` -> `num_env_runners`)."""
        if section == "model":
            return self.model_config.get(key)
        return getattr(self, _BUILDER_NAMES[section].get(key, key))

    def _max_seed(self) -> int:
        """The largest `seed` whose derived seeds all stay numpy seeds (at most 2**32 - 1).

        Env runner i seeds with seed + WORKER_SEED_STRIDE * i (the evaluation runner is index
        EVALUATION_WORKER_INDEX), its sub-envs add their index, and a replaced Ray runner adds
        RESTART_SEED_STRIDE per restart.
        """
        from rlrun.algorithms.algorithm import EVALUATION_WORKER_INDEX
        from rlrun.env.env_runner import WORKER_SEED_STRIDE
        from rlrun.env.env_runner_actors import RESTART_SEED_STRIDE

        restarts = self.max_num_env_runner_restarts if self.num_env_runners > 0 else 0
        offset = (WORKER_SEED_STRIDE * max(self.num_env_runners, EVALUATION_WORKER_INDEX)
                  + self.num_envs_per_env_runner - 1 + RESTART_SEED_STRIDE * restarts)
        return MAX_NUMPY_SEED - offset

    def _validate_seed(self) -> None:
        # Here, not where the seeds are used: np.random.seed would end the run with a traceback.
        top = self._max_seed()
        check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= top,
              f"seed must be an integer in [0, {top}] so that the seeds derived from it stay within numpy's "
              "[0, 2**32 - 1]", self.seed)

    def _validate_model(self) -> None:
        from rlrun.core.rl_module.catalog import ModelError, check_conv_filters

        hiddens = list(self.model_config.get("hiddens") or [])
        check(all(isinstance(h, int) and h > 0 for h in hiddens), "model.hiddens must be positive integers", hiddens)
        if self.model_config.get("conv_filters") is not None:
            try:
                check_conv_filters(self.model_config["conv_filters"])
            except ModelError as e:
                raise ConfigError(str(e)) from None
        self._validate_recurrent()

    def _validate_recurrent(self) -> None:
        """`model.use_lstm` / `use_gru`: one of them, on an algorithm whose learner trains sequences, and the
        recurrent keys only with one of them (a key that changes nothing would be ignored silently)."""
        from rlrun.algorithms.registry import ALGORITHMS, get_algorithm_config_class
        from rlrun.core.rl_module.recurrent import is_recurrent

        model = self.model_config
        check(not (model.get("use_lstm") and model.get("use_gru")), "model.use_lstm and model.use_gru exclude each "
              "other: pick the LSTM or the GRU", True)
        if not is_recurrent(model):
            defaults = ModelSchema()
            for name in ("lstm_cell_size", "max_seq_len", "lstm_use_prev_action", "lstm_use_prev_reward"):
                check(model.get(name) == getattr(defaults, name), f"model.{name} is for recurrent models; set "
                      "model.use_lstm=true (or model.use_gru=true) too", model.get(name))
            return
        switch = "model.use_gru" if model.get("use_gru") else "model.use_lstm"
        takers = [name for name in ALGORITHMS if get_algorithm_config_class(name).supports_recurrent]
        check(self.supports_recurrent, f"{switch}: algo={self.algo_class.__name__.lower()} has no recurrent models "
              f"yet; algorithms that do: {', '.join(takers)}", True)
        check(not model.get("module_class"), f"{switch} builds rlrun's recurrent module; a model.module_class of "
              "your own is recurrent by its own state_size (docs: Extending rlrun)", model.get("module_class"))

    def _validate_env(self) -> None:
        from rlrun.env.env_spec import EnvError

        try:
            self.env_spec()  # the form of env.wrappers
        except EnvError as e:
            raise ConfigError(str(e)) from None
        for obs_space, act_space in self._env_spaces():
            self._validate_spaces(obs_space, act_space)
            self._validate_module_class(obs_space, act_space)

    def _env_spaces(self) -> list[tuple[gym.Space, gym.Space]]:
        """(observation, action) space of the env, or of each module of a multi-agent env."""
        from rlrun.env.env_creation import EnvError, check_env_spec, env_spaces, resolve_env
        from rlrun.env.multi_agent.mapping import MappingError

        try:
            env = self.make_multi_agent_env()  # built once: telling a PettingZoo function's env apart builds it
            if env is None:
                check(not self.model_config.get("central_value"), f"model.central_value needs a multi-agent env; "
                      f"'{self.env}' is single-agent", True)
                spec = self.env_spec()
                resolve_env(spec.id)  # an unknown id is an env.id error, below
                try:
                    check_env_spec(spec)  # messages that name their own key (env.atari, env.backend, env.wrappers)
                except EnvError as e:
                    raise ConfigError(str(e)) from None
                return [env_spaces(spec)]
            from rlrun.core.rl_module.recurrent import is_recurrent
            from rlrun.env.multi_agent.turn_based import TurnBasedEnv

            try:
                check(not (self.model_config.get("central_value") and isinstance(env, TurnBasedEnv)),
                      f"model.central_value is for simultaneous-move envs; '{self.env}' is a turn-based game, which "
                      "has no global state per step", True)
                check(not (is_recurrent(self.model_config) and isinstance(env, TurnBasedEnv)),
                      f"model.use_lstm / model.use_gru: '{self.env}' is a turn-based game, whose runner does not carry "
                      "recurrent states yet; simultaneous-move (parallel) envs do", True)
                mapping = self.build_policy_mapping(env)
            finally:
                env.close()
        except ConfigError:
            raise
        except EnvError as e:
            raise ConfigError(f"env.id: {e}") from None
        except MappingError as e:
            raise ConfigError(str(e)) from None
        except Exception as e:  # the user's env or env_config failed to construct
            wrapped = f" and env.wrappers={self.env_wrappers}" if self.env_wrappers else ""
            raise ConfigError(f"env '{self.env}' could not be created with env.env_config={self.env_config}{wrapped}: "
                              f"{type(e).__name__}: {e}") from None
        self._validate_multi_agent(mapping)
        return list(mapping.spaces.values())

    def _validate_multi_agent(self, mapping: PolicyMapping) -> None:
        """What a multi-agent run does not support yet, and policies_to_train naming modules that exist."""
        if not self.supports_multi_agent:
            raise ConfigError(f"algo={self.algo_class.__name__.lower()} does not support multi-agent envs such as "
                              f"'{self.env}' yet; algorithms that do: ppo, impala, appo")
        from rlrun.core.rl_module.recurrent import is_recurrent

        central = self.model_config.get("central_value")
        check(not (central and is_recurrent(self.model_config)), "model.central_value and model.use_lstm / "
              "model.use_gru exclude each other for now: the central value network has no recurrent core", True)
        check(not central or self.algo_class.__name__ == "PPO", "model.central_value is a PPO feature (MAPPO); "
              f"algo={self.algo_class.__name__.lower()} trains a value function on the agent's own observation", True)
        check(not (central and self.model_config.get("vf_share_layers")),
              "model.central_value and model.vf_share_layers exclude each other: the value network reads the state",
              True)
        if central:  # a global state built from packed rows would be their raw bytes read as numbers
            from rlrun.core.packed_space import PackedSpace

            agent_spaces = [obs["obs"] for obs, _ in mapping.spaces.values()]
            structured = [space.original for space in agent_spaces if isinstance(space, PackedSpace)]
            check(not structured, f"model.central_value needs Box agent observations; '{self.env}' gives structured "
                  "ones, whose packed bytes the value network cannot read as a global state",
                  next(iter(structured), None))
        trained = self.policies_to_train
        check(trained is None or (len(trained) > 0 and set(trained) <= set(mapping.modules)),
              f"multi_agent.policies_to_train must list some of the policies {mapping.modules} (or be null)", trained)
        check(self.observation_filter == "NoFilter" and not self.normalize_rewards,
              "env_runners.observation_filter and normalize_rewards are single-agent only",
              {"observation_filter": self.observation_filter, "normalize_rewards": self.normalize_rewards})
        check(self.max_episode_steps is None, "env.max_episode_steps is single-agent only; set the episode limit "
              "through the PettingZoo env's own env.env_config key (max_steps, max_cycles, ...)",
              self.max_episode_steps)
        single_agent = {"env.backend": self.env_backend != "sync", "env.wrappers": bool(self.env_wrappers),
                        "env.atari": self.atari is not None}
        for name, set_ in single_agent.items():
            check(not set_, f"{name} is single-agent only (a PettingZoo env's copies are stepped by the multi-agent "
                  "env runner)", self._section_value("env", name.partition(".")[2]))

    def _validate_module_class(self, obs_space: gym.Space, act_space: gym.Space) -> None:
        """A user's `model.module_class`, built on the run's spaces and run forward (`module_contract`)."""
        if self.model_config.get("module_class") is None:
            return
        spec = self.get_rl_module_spec()
        check_module(spec.resolved_class(), self.module_contract, self.algo_class.__name__.lower(), obs_space,
                     act_space, spec.model_config)

    def _validate_spaces(self, obs_space: gym.Space, act_space: gym.Space) -> None:
        if isinstance(obs_space, gym.spaces.Dict) and self.model_config.get("central_value"):
            obs_space = obs_space["obs"]  # the policy's own observation; the state is flat by construction
        if not isinstance(act_space, self.supported_action_spaces):
            from rlrun.algorithms.registry import algorithms_taking

            allowed = ", ".join(s.__name__ for s in self.supported_action_spaces)
            kind, takers = type(act_space).__name__, algorithms_taking(act_space)
            elsewhere = f"algorithms that take {kind}: {', '.join(takers)}" if takers else f"no algorithm takes {kind}"
            raise ConfigError(f"algo={self.algo_class.__name__.lower()} does not support env '{self.env}' with "
                              f"action space {act_space}; supported: {allowed}; {elsewhere}")
        if isinstance(act_space, gym.spaces.Discrete) and act_space.start != 0:
            raise ConfigError(f"env '{self.env}' has action space {act_space}: the policies act in 0..n-1, so a "
                              "Discrete action space must start at 0 (MultiDiscrete may start elsewhere)")
        self._validate_action_mask(obs_space, act_space)
        self._validate_log_std_init(act_space)
        from rlrun.core.packed_space import PackedSpace
        from rlrun.core.rl_module.catalog import Catalog, ModelError

        try:  # e.g. a CNN too big for the images; a Dict, Discrete, ... observation arrives packed (PackedSpace)
            Catalog(obs_space, self.model_config).check()
        except ModelError as e:
            shape = obs_space.original if isinstance(obs_space, PackedSpace) else obs_space.shape
            raise ConfigError(f"env '{self.env}' ({shape} observations): {e}") from None

    def _validate_log_std_init(self, act_space: gym.Space) -> None:
        """`model.log_std_init` only where it starts a weight: a Gaussian policy's log std (a key that changes
        nothing would be ignored silently)."""
        log_std_init = self.model_config.get("log_std_init", 0.0)
        if log_std_init == 0.0 or (self.has_log_std_weight and isinstance(act_space, gym.spaces.Box)):
            return
        from rlrun.algorithms.registry import ALGORITHMS, get_algorithm_config_class

        *others, last = [name for name in ALGORITHMS if get_algorithm_config_class(name).has_log_std_weight]
        raise ConfigError(f"model.log_std_init starts the log std weight of a Gaussian policy: "
                          f"algo={self.algo_class.__name__.lower()} on action space {act_space} has none; it is for "
                          f"Box actions with {', '.join(others)} and {last} (got {log_std_init!r})")

    def _validate_action_mask(self, obs_space: gym.Space, act_space: gym.Space) -> None:
        """An `action_mask` observation entry needs a Discrete or MultiDiscrete action space and one entry per
        logit; a mask that did not fit would be ignored or misread, silently."""
        from rlrun.core.rl_module.action_masking import MASKABLE_ACTION_SPACES, has_action_mask, mask_size, num_logits

        if not has_action_mask(obs_space):
            return
        if not isinstance(act_space, MASKABLE_ACTION_SPACES):
            raise ConfigError(f"env '{self.env}' has an action_mask in its observations, but action masks apply "
                              f"to Discrete and MultiDiscrete actions; its action space is {act_space}")
        size, needed = mask_size(obs_space), num_logits(act_space)
        if size != needed:
            raise ConfigError(f"env '{self.env}' has an action_mask of {size} entries; its action space {act_space} "
                              f"needs {needed} (one per action; MultiDiscrete: the sub-actions' masks concatenated)")


def _atari_keys(atari: bool | Mapping[str, Any]) -> dict[str, Any] | None:
    """`environment(atari=...)` as the `env.atari` section: every key of AtariSchema, or None."""
    from rlrun.config.schema import AtariSchema

    if isinstance(atari, bool):
        return dataclasses.asdict(AtariSchema()) if atari else None
    allowed = {f.name for f in dataclasses.fields(AtariSchema)}
    unknown = sorted(set(atari) - allowed)
    if unknown:
        raise ConfigError(f"unknown key env.atari.{unknown[0]}; env.atari has {', '.join(sorted(allowed))}")
    return {**dataclasses.asdict(AtariSchema()), **atari}


def single_spaces(env: gym.Env | gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(observation, action) space of one copy of `env` (a vector env's single spaces)."""
    if isinstance(env, gym.vector.VectorEnv):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def check_schedule(
    schedule: Any, key: str, value_name: str, upper: float | None = None, starts_at: tuple[str, float] | None = None
) -> None:
    """A piecewise schedule `[[timestep, value], ...]` at YAML key `key`: pairs, timesteps not decreasing,
    values >= 0 (and <= `upper` if given).

    `starts_at` is the (key, value) of the constant the schedule takes the place of (`algo.lr` beside
    `algo.lr_schedule`). The schedule must start at that value: otherwise setting the constant, e.g. in a
    sweep over `algo.lr`, would change nothing while the record says it did. Presets therefore write
    `[[0, ${algo.lr}], ...]`, so that setting the constant moves the schedule with it.
    """
    ok = isinstance(schedule, (list, tuple)) and len(schedule) > 0 and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in schedule
    )
    check(ok, f"{key} must be a list of [timestep, {value_name}] pairs", schedule)
    ts = [p[0] for p in schedule]
    check(all(b >= a for a, b in zip(ts, ts[1:])), f"{key} timesteps must not decrease", schedule)
    check(all(p[1] >= 0 for p in schedule), f"{key} values must be >= 0", schedule)
    check(upper is None or all(p[1] <= upper for p in schedule), f"{key} values must be <= {upper}", schedule)
    if starts_at is not None:
        value_key, value = starts_at
        start = float(schedule[0][1])
        if not math.isclose(start, value, rel_tol=1e-9, abs_tol=1e-12):
            rest = "".join(f",[{t},{v}]" for t, v in schedule[1:])
            raise ConfigError(
                f"{value_key}={value!r} conflicts with {key}, which starts at {start!r} and sets the {value_name} "
                f"used; start the schedule at {value_key} ({key}='[[{schedule[0][0]},${{{value_key}}}]{rest}]') "
                f"or drop it ({key}=null)"
            )

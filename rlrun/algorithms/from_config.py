"""Map a composed Hydra config onto the AlgorithmConfig builder (the YAML keys are its sections).

The run layer, Tune's trials and the evaluation CLI build their algorithm through here; the config package
below only checks the run-level keys (`rlrun.config.validation`) and never imports the algorithms.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.registry import algorithm_schemas, get_algorithm_config_class
from rlrun.config.schema import LearnersSchema, register_schemas
from rlrun.config.validation import validate_run


def build_algorithm_config(cfg: DictConfig) -> AlgorithmConfig:
    """`algo`, `env`, `env_runners`, `learners`, `model` and `seed` -> a builder of the chosen algorithm."""
    algo: dict[str, Any] = OmegaConf.to_container(cfg.algo, resolve=True)  # type: ignore[assignment]
    config = get_algorithm_config_class(algo.pop("name"))()
    config.environment(
        env=cfg.env.id,
        env_config=OmegaConf.to_container(cfg.env.env_config, resolve=True),
        max_episode_steps=cfg.env.max_episode_steps,
        # .get: a run directory saved before these keys existed (rlrun-eval, resume=) has none of them.
        backend=cfg.env.get("backend", "sync"),
        wrappers=_container(cfg.env.get("wrappers"), []),
        atari=_container(cfg.env.get("atari"), False),
    )
    config.env_runners(
        num_env_runners=cfg.env_runners.num,
        num_envs_per_env_runner=cfg.env_runners.num_envs_per_runner,
        rollout_fragment_length=cfg.env_runners.rollout_fragment_length,
        num_cpus_per_env_runner=cfg.env_runners.num_cpus_per_env_runner,
        sample_timeout_s=cfg.env_runners.sample_timeout_s,
        observation_filter=cfg.env_runners.observation_filter,
        normalize_rewards=cfg.env_runners.normalize_rewards,
        clip_observations=cfg.env_runners.clip_observations,
        clip_normalized_rewards=cfg.env_runners.clip_normalized_rewards,
        num_threads_per_env_runner=cfg.env_runners.num_threads,
    )
    config.fault_tolerance(
        max_num_env_runner_restarts=cfg.env_runners.max_restarts,
        # .get: as above, a run directory saved before the learners' fault-tolerance keys existed.
        max_num_learner_restarts=cfg.learners.get("max_restarts", LearnersSchema.max_restarts),
        max_non_finite_updates=cfg.learners.get("max_non_finite_updates", LearnersSchema.max_non_finite_updates),
    )
    config.learners(
        num_learners=cfg.learners.num,
        num_gpus_per_learner=cfg.learners.num_gpus_per_learner,
        num_cpus_per_learner=cfg.learners.num_cpus_per_learner,
        num_threads_per_learner=cfg.learners.num_threads,
    )
    config.offline_data(dataset=cfg.offline.dataset, memory_rows=cfg.offline.memory_rows)
    multi_agent = OmegaConf.to_container(cfg.multi_agent, resolve=True)
    config.multi_agent(**multi_agent)  # type: ignore[arg-type]
    config.training(**algo)
    config.rl_module(model_config=OmegaConf.to_container(cfg.model, resolve=True))
    config.debugging(seed=cfg.seed)
    config.callbacks(_container(cfg.get("callbacks"), []))
    return config


def _container(node: Any, default: Any) -> Any:
    """A DictConfig / ListConfig as plain dicts and lists (interpolations resolved); `default` for null."""
    return default if node is None else OmegaConf.to_container(node, resolve=True)


def validated_algorithm_config(cfg: DictConfig) -> AlgorithmConfig:
    """The run's algorithm builder, after every check a CLI run makes (run keys, then the algorithm's own):
    the CLI, a Tune trial and a study's up-front check of its first trial all accept exactly the same configs."""
    # A job in a process of its own (a launcher's worker, a Tune trial) has not handed the config package the
    # algorithms' schemas yet: its key checks read them from there.
    register_schemas(algorithm_schemas())
    validate_run(cfg)
    config = build_algorithm_config(cfg)
    config.validate()
    return config

"""Typed schemas of every config group, registered in Hydra's ConfigStore.

These dataclasses are the single source of defaults: the YAML files in
`rlrun/conf` select and override them, and `AlgorithmConfig` reads its
defaults from them, so the CLI and the Python API cannot drift apart.
OmegaConf enforces the types (an `int` key refuses `abc`); the range and
consistency checks live in `AlgorithmConfig.validate` and `validate_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class AlgoSchema:
    """Training keys every algorithm has (`.training(...)` in the builder)."""

    name: str = "???"
    lr: float = 3e-4
    # Piecewise-linear lr over env steps: [[0, 1e-3], [100000, 1e-4]]; overrides `lr`.
    lr_schedule: list[Any] | None = None
    gamma: float = 0.99
    train_batch_size: int = 4000
    # Rows per gradient step; null = train_batch_size (one gradient step per update and epoch).
    minibatch_size: int | None = 128
    num_epochs: int = 10
    grad_clip: float | None = 0.5
    # A user Learner subclass as `pkg.module:MyLearner`; null = the algorithm's own.
    learner_class: str | None = None


@dataclass
class EnvSchema:
    """`.environment(env, env_config)`: a gymnasium id, `module:EnvId` or `pkg.module:Class`.

    The id is the env's only name: a second key naming it (once `name: cartpole`) would go stale whenever
    `env.id=...` or an offline dataset replaces the env, and the run's saved config would contradict itself.
    """

    id: str = "CartPole-v1"
    env_config: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None


@dataclass
class EnvRunnersSchema:
    """`.env_runners(...)`: `num=0` samples in the main process."""

    num: int = 0
    num_envs_per_runner: int = 8
    # Steps per env per sample; "auto" = train_batch_size / (runners * envs).
    rollout_fragment_length: Any = "auto"
    num_cpus_per_env_runner: float = 1.0
    # Fault tolerance: a failed runner actor is replaced and re-synced, at most this often per run.
    max_restarts: int = 10
    # Asynchronous sampling (IMPALA, APPO): a runner with no fragment for this long is taken for hung and replaced.
    sample_timeout_s: float = 60.0
    # Normalisation by running statistics (rlrun/env/normalization.py), checkpointed and synced across runners.
    # NoFilter | MeanStdFilter: observations -> (obs - mean) / std, clipped to +-clip_observations.
    observation_filter: str = "NoFilter"
    # Rewards / running std of the discounted return (SB3's VecNormalize), clipped to +-clip_normalized_rewards.
    normalize_rewards: bool = False
    clip_observations: float = 10.0
    clip_normalized_rewards: float = 10.0


@dataclass
class LearnersSchema:
    """`.learners(...)`: `num=0` trains one local Learner; `num>=1` DDP learner actors."""

    num: int = 0
    num_gpus_per_learner: float = 0.0
    num_cpus_per_learner: float = 1.0


@dataclass
class ModelSchema:
    """`.rl_module(model_config=...)` for the default actor-critic MLP."""

    hiddens: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    vf_share_layers: bool = False
    # Multi-agent PPO (MAPPO): the value network sees the env's global state (PettingZoo's `state()`, else all
    # agents' observations), the policy only its agent's observation.
    central_value: bool = False


class ConsoleMode(str, Enum):
    rich = "rich"
    plain = "plain"
    none = "none"


@dataclass
class LoggerSchema:
    """metrics.jsonl, TensorBoard and the console; `logger=mlflow|wandb` add a tracker (rlrun/run/trackers)."""

    name: str = "default"
    console: ConsoleMode = ConsoleMode.rich
    tensorboard: bool = True
    # Episodes in the moving window behind env_runners/episode_return_mean (RLlib: 100).
    smoothing_episodes: int = 100


@dataclass
class MlflowLoggerSchema(LoggerSchema):
    """`logger=mlflow`: every run is also an MLflow run (the `mlflow` extra)."""

    name: str = "mlflow"
    # A server (http://127.0.0.1:5000), a database (sqlite:///mlflow.db) or a local directory (a file store).
    tracking_uri: str = "./mlruns"
    experiment: str = "rlrun"
    # Upload learning_curve.png and the final checkpoint with the run.
    artifacts: bool = True


class WandbMode(str, Enum):
    offline = "offline"  # written under the run directory; `wandb sync` uploads it later
    online = "online"


@dataclass
class WandbLoggerSchema(LoggerSchema):
    """`logger=wandb`: every run is also a Weights & Biases run (the `wandb` extra)."""

    name: str = "wandb"
    project: str = "rlrun"
    # offline first: no network or account needed until `wandb sync`.
    mode: WandbMode = WandbMode.offline
    artifacts: bool = True


# The options of the logger group beside `default`, each with the keys of its tracker.
LOGGER_SCHEMAS: dict[str, type] = {"mlflow": MlflowLoggerSchema, "wandb": WandbLoggerSchema}


@dataclass
class StopSchema:
    """Stop at whichever criterion is reached first; null disables one."""

    timesteps: int | None = 1_000_000
    iterations: int | None = None
    time_s: float | None = None
    return_mean: float | None = None


@dataclass
class RaySchema:
    """The Ray cluster, used when `env_runners.num > 0`, `learners.num > 0` or `address` is set."""

    # null = start a local instance for this run; "auto" or "host:port" = join a running cluster.
    address: str | None = None
    dashboard: bool = False
    # Resources of a started instance; null = what the experiment asks for, at least this machine's cores / GPUs.
    num_cpus: int | None = None
    num_gpus: int | None = None


@dataclass
class CheckpointSchema:
    every_iterations: int = 0  # 0 = only the final checkpoint
    # Periodic checkpoint_<iteration> dirs to keep, newest first; 0/null = all. `final` and `best` are extra.
    keep_last: int | None = None
    # false: checkpoints leave an off-policy algorithm's replay buffer out (huge buffers); a run resumed from
    # one refills an empty buffer before it learns again. Safe to change on resume.
    replay_buffer: bool = True


@dataclass
class EvaluationSchema:
    """Greedy evaluation episodes on an env runner of their own, logged as `evaluation/...`."""

    every_iterations: int = 0  # 0 = only once, at the end of the run
    episodes: int = 10


@dataclass
class OfflineSchema:
    """`.offline_data(...)`: the recorded dataset offline algorithms (BC, MARWIL) train from."""

    # A Minari dataset: a directory, or a dataset id in the local Minari root ($MINARI_DATASETS_PATH).
    dataset: str | None = None
    # Rows each learner holds in memory while streaming its shard (episodes are read from disk in chunks).
    memory_rows: int = 1_000_000


@dataclass
class MultiAgentSchema:
    """`.multi_agent(...)`: which policy acts for which agent of a PettingZoo env (rlrun/env/multi_agent/)."""

    # shared (one policy for all agents), independent (one per agent id), or a list of policy ids.
    policies: Any = "shared"
    # With a list of policies: agent-id glob pattern -> policy id, first match wins.
    policy_mapping: dict[str, str] = field(default_factory=dict)
    # Policies the learners update; null = all (the others act with the weights they start with).
    policies_to_train: list[str] | None = None
    # An algorithm checkpoint (<run>/checkpoints/final, ...) whose modules start this run's modules of the same
    # id: e.g. a fixed opponent, with policies_to_train leaving it out.
    init_from: str | None = None


# The schema every option of a group inherits; `algo` has one per algorithm (registry.algorithm_schemas).
GROUP_SCHEMAS: dict[str, type] = {
    "env": EnvSchema,
    "env_runners": EnvRunnersSchema,
    "learners": LearnersSchema,
    "model": ModelSchema,
    "logger": LoggerSchema,
}


def register_schemas() -> None:
    """Put every group's schema into Hydra's ConfigStore (group files inherit from them)."""
    from rlrun.algorithms.registry import algorithm_schemas

    cs = ConfigStore.instance()
    # Under schema/<group> so they do not show up as choices of the group itself.
    for name, schema in algorithm_schemas().items():
        cs.store(group="schema/algo", name=name, node=schema)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=f"schema/{group}", name=group, node=schema)
    for name, schema in LOGGER_SCHEMAS.items():
        cs.store(group="schema/logger", name=name, node=schema)
    cs.store(name="run_schema", node=RunSchema)


@dataclass
class RunSchema:
    """Top-level keys beside the groups."""

    seed: int = 0
    stop: StopSchema = field(default_factory=StopSchema)
    checkpoint: CheckpointSchema = field(default_factory=CheckpointSchema)
    evaluation: EvaluationSchema = field(default_factory=EvaluationSchema)
    # A run directory or checkpoint directory to continue (`rlrun resume=<dir>`); see rlrun/run/resume.py.
    resume: str | None = None
    ray: RaySchema = field(default_factory=RaySchema)
    offline: OfflineSchema = field(default_factory=OfflineSchema)
    multi_agent: MultiAgentSchema = field(default_factory=MultiAgentSchema)
    algo: Any = None
    env: Any = None
    env_runners: Any = None
    learners: Any = None
    model: Any = None
    logger: Any = None

"""Typed schemas of every config group, registered in Hydra's ConfigStore.

These dataclasses are the single source of defaults: the YAML files in
`rlrun/conf` select and override them, and `AlgorithmConfig` reads its
defaults from them, so the CLI and the Python API cannot drift apart.
Each key is declared with `rlrun.config.fields.key`: its one-line description
and, where it has one, its allowed range, which the docs site shows and
`check_fields` enforces. OmegaConf enforces the types (an `int` key refuses
`abc`); the checks that relate keys to each other live in
`AlgorithmConfig.validate` and `validate_run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rlrun.config.fields import key, override


@dataclass
class AlgoSchema:
    """Training keys every algorithm has (`.training(...)` in the builder)."""

    name: str = key("???", "The algorithm, as picked with `algo=<name>`; set by the option's file, not by hand.")
    lr: float = key(3e-4, "Learning rate of the Adam optimizer.", bounds="> 0")
    lr_schedule: list[Any] | None = key(
        None, "Piecewise-linear learning rate over env steps sampled, e.g. `[[0, 1e-3], [100000, 1e-4]]`; it must "
        "start at `lr`. null = the constant `lr`.")
    gamma: float = key(0.99, "Discount factor of future rewards.", bounds="in (0, 1]")
    train_batch_size: int = key(4000, "Env steps sampled per training iteration, the rows of one learner update.",
                                bounds=">= 1")
    minibatch_size: int | None = key(
        128, "Rows per gradient step, at most `train_batch_size`; null = `train_batch_size` (one gradient step "
        "per epoch).", bounds=">= 1")
    num_epochs: int = key(10, "Passes over each train batch per learner update.", bounds=">= 1")
    grad_clip: float | None = key(0.5, "Largest global gradient norm; larger gradients are scaled down to it. "
                                  "null = no clipping.", bounds="> 0")
    learner_class: str | None = key(
        None, "A Learner subclass of your own, as `pkg.module:MyLearner`; null = the algorithm's own learner.")


@dataclass
class AtariSchema:
    """`env.atari`: the Atari preprocessing of Mnih et al. (2015) and Machado et al. (2018), as CleanRL and SB3's
    AtariWrapper do it; gymnasium's AtariPreprocessing and FrameStackObservation (or envpool's own options)."""

    noop_max: int = key(30, "At most this many no-op actions after a reset, a random number of them, so that "
                        "episodes start in different states; 0 = none.", bounds=">= 0")
    frame_skip: int = key(4, "Each action is repeated for this many emulator frames; the observation is the "
                          "pixel-wise max of the last two (no flicker).", bounds=">= 1")
    screen_size: int = key(84, "Frames are resized to screen_size x screen_size pixels.", bounds=">= 1")
    grayscale: bool = key(True, "Grey frames (one channel each); false = RGB, three channels per frame.")
    frame_stack: int = key(4, "The observation stacks the last this many frames on axis 0: (frame_stack, 84, 84) "
                           "uint8 (RGB: 3 x frame_stack channels).", bounds=">= 1")
    terminal_on_life_loss: bool = key(
        True, "Training only: a lost life is a terminal step of the batch (no bootstrap across it); the game "
        "goes on, and reported episodes are whole games.")
    clip_rewards: bool = key(True, "Training only: the batch's rewards are their sign (-1, 0, 1); reported "
                             "returns are the game's score.")
    fire_reset: bool = key(True, "Press FIRE after each reset in games that have it (Breakout's ball does not "
                           "launch otherwise), as CleanRL and SB3 do.")
    repeat_action_probability: float = key(
        0.0, "Sticky actions: the chance the emulator repeats the previous action each frame. ALE v5's own "
        "default is 0.25 (Machado et al.); 0 matches CleanRL, rl-zoo3 (NoFrameskip-v4) and envpool.",
        bounds="in [0, 1]")


@dataclass
class EnvSchema:
    """`.environment(env, env_config)`: a gymnasium id, `module:EnvId` or `pkg.module:Class`.

    The id is the env's only name: a second key naming it (once `name: cartpole`) would go stale whenever
    `env.id=...` or an offline dataset replaces the env, and the run's saved config would contradict itself.
    """

    id: str = key("CartPole-v1", "The env: a gymnasium id (`CartPole-v1`), `module:EnvId` (imports the module "
                  "that registers it) or `pkg.module:Class`; a PettingZoo env makes the run multi-agent.")
    env_config: dict[str, Any] = key(doc="Keyword arguments of the env's constructor (free-form keys).",
                                     default_factory=dict)
    max_episode_steps: int | None = key(
        None, "Truncate episodes after this many env steps (a gymnasium TimeLimit; with env.atari, agent steps "
        "after frame skipping); null = the env's own limit.", bounds=">= 1")
    # The backends of rlrun/env/env_creation.py (BACKENDS; tests/test_env_backends.py keeps the two equal).
    backend: str = key(
        "sync", "How each runner vectorizes its env copies: `sync` steps them one after another in its process, "
        "`async` runs each in a process of its own (gymnasium AsyncVectorEnv), `envpool` in envpool's C++ "
        "threads (Atari and MuJoCo ids).", choices=("sync", "async", "envpool"))
    wrappers: list[Any] = key(
        doc="gymnasium wrappers applied to each env copy, in order, after rlrun's own preprocessing: a class "
        "name of gymnasium.wrappers (`ClipReward`), `pkg.module:Class`, or `{name: ..., kwargs: {...}}`.",
        default_factory=list)
    atari: AtariSchema | None = key(
        None, "Atari preprocessing (`env=atari` turns it on with these defaults); null = the env's raw frames.")


@dataclass
class EnvRunnersSchema:
    """`.env_runners(...)`: `num=0` samples in the main process."""

    num: int = key(0, "EnvRunner actors sampling in parallel (Ray); 0 = sample in the main process.", bounds=">= 0")
    num_envs_per_runner: int = key(8, "Vectorized envs each runner (or the main process) steps at once.",
                                   bounds=">= 1")
    rollout_fragment_length: Any = key(
        "auto", "Env steps per env in one sample, an integer >= 1; `auto` = train_batch_size / (runners x envs).")
    num_cpus_per_env_runner: float = key(1.0, "CPUs Ray reserves for each EnvRunner actor.", bounds="> 0")
    max_restarts: int = key(
        10, "Fault tolerance: how often per run a failed EnvRunner actor is replaced (and re-synced) before the "
        "run fails.", bounds=">= 0")
    sample_timeout_s: float = key(
        60.0, "Seconds without an answer (a fragment, weights, its state) after which an EnvRunner actor is taken "
        "for hung (a SIGSTOP, a deadlocked env) and replaced like a dead one; a replacement's clock starts once it "
        "is up.", bounds="> 0")
    # The filters of rlrun/env/normalization.py (OBSERVATION_FILTERS; tests/test_config_fields.py keeps the two equal).
    observation_filter: str = key(
        "NoFilter", "`MeanStdFilter` normalizes observations by running mean and std (synced across runners, "
        "checkpointed), clipped to +-clip_observations; `NoFilter` leaves them.",
        choices=("NoFilter", "MeanStdFilter"))
    normalize_rewards: bool = key(
        False, "Divide rewards by the running std of the discounted return (SB3's VecNormalize), clipped to "
        "+-clip_normalized_rewards.")
    clip_observations: float = key(10.0, "Bound of the normalized observations (with MeanStdFilter).", bounds="> 0")
    clip_normalized_rewards: float = key(10.0, "Bound of the normalized rewards (with normalize_rewards).",
                                         bounds="> 0")
    num_threads: int | None = key(
        None, "torch threads of each env runner's forward passes; null = its num_cpus_per_env_runner (at least "
        "1). The local env runner (num=0) samples with it and gives the process back to the local learner's "
        "count to train.",
        bounds=">= 1")


@dataclass
class LearnersSchema:
    """`.learners(...)`: `num=0` trains one local Learner; `num>=1` DDP learner actors."""

    num: int = key(0, "Learner actors training with DDP (Ray), each on its share of a minibatch; 0 = one Learner "
                   "in the main process.", bounds=">= 0")
    num_gpus_per_learner: float = key(
        0.0, "GPUs per learner; a fraction shares a GPU; 0 = train on the CPU.", bounds="in [0, 1]",
        note="a learner trains on one device; fractions share a GPU")
    num_cpus_per_learner: float = key(1.0, "CPUs Ray reserves for each learner actor.", bounds="> 0")
    num_threads: int | None = key(
        None, "torch threads of each learner; null = 1 for MLPs (their matrices are too small to split), and for "
        "CNNs the learner's CPUs: a learner actor's num_cpus_per_learner, the local learner's this machine's "
        "cores less those of the env runner actors.", bounds=">= 1")
    max_restarts: int = key(
        3, "Fault tolerance: how often per run the learner actors are rebuilt (a new DDP process group, from the "
        "newest learner state) after one of them died, before the run stops with a final checkpoint of the last "
        "good state.", bounds=">= 0")
    max_non_finite_updates: int = key(
        32, "Gradient steps in a row with a non-finite loss or gradient (each skipped and counted in "
        "learners/<module>/num_non_finite_updates) after which the run stops.", bounds=">= 1")


@dataclass
class ModelSchema:
    """`.rl_module(model_config=...)`: the networks the model catalog (rlrun/core/rl_module/catalog.py) builds."""

    hiddens: list[int] | None = key(
        None, "Sizes of the hidden layers after the encoder, in each network (policy, value, Q); null = [64, 64] "
        "for vector observations, none after a CNN (its dense layer is the torso).")
    # The activations of rlrun/core/rl_module/catalog.py (ACTIVATIONS; tests/test_config_fields.py keeps
    # the two equal), sorted as the message has always listed them.
    activation: str = key("tanh", "Activation function after each hidden layer.",
                          choices=("elu", "gelu", "relu", "silu", "tanh"))
    cnn: str | None = key(
        None, "The CNN encoder of image observations (3-d Box, channels first or last): `nature` (Mnih et al. "
        "2015, images of 36x36 and more), `impala` (the residual network of Espeholt et al. 2018) or `small` "
        "(three 2x2 convolutions, for MiniGrid's 7x7 view); null = `nature` for images of 36x36 and more, else "
        "`small`, and one convolution over the whole image for images smaller than 4x4 (a 3x3 board).",
        choices=("impala", "nature", "small"))
    conv_filters: list[Any] | None = key(
        None, "Explicit conv layers for image observations instead of `cnn`, RLlib's form "
        "`[[out_channels, kernel, stride], ...]` (unpadded, ReLU), e.g. `[[16,2,1],[32,2,1],[64,2,1]]` for "
        "MiniGrid's 7x7 view; null = `cnn`.")
    cnn_dense: int | None = key(
        None, "Units of the dense layer after the conv layers; null = the CNN's own (nature 512, impala 256, "
        "none after conv_filters); 0 = none.", bounds=">= 0")
    vf_share_layers: bool = key(False, "The value head sits on the policy's encoder and hidden layers instead of "
                                "a network of its own (the usual choice for CNNs: one encoder, not two).")
    log_std_init: float = key(0.0, "Initial log std of a Gaussian policy (Box actions: PPO, IMPALA, APPO), whose "
                              "std is one trained weight per action dimension, not an output; SB3's name. rl-zoo3's "
                              "MuJoCo PPO starts at -2 (std 0.14).")
    central_value: bool = key(
        False, "Multi-agent PPO (MAPPO): the value network sees the env's global state (PettingZoo's `state()`, "
        "else all agents' observations), the policy only its agent's observation.")
    use_lstm: bool = key(
        False, "An LSTM after the encoder and hidden layers of the policy and of the value network (one under both "
        "heads with vf_share_layers), so the policy remembers what it saw: partially observed tasks "
        "(env=stateless_cartpole). PPO, IMPALA and APPO.")
    use_gru: bool = key(False, "A GRU in place of use_lstm's LSTM (fewer weights, one state vector).")
    lstm_cell_size: int = key(256, "Units of the recurrent cell (use_lstm or use_gru).", bounds=">= 1", integer=True)
    max_seq_len: int = key(
        20, "Longest sequence of steps a recurrent model trains on (backpropagation through time); a sequence also "
        "ends where an episode starts.", bounds=">= 1", integer=True)
    lstm_use_prev_action: bool = key(
        False, "The recurrent cell also reads the previous action (one-hot for Discrete and MultiDiscrete; zeros at "
        "an episode's first step), as RLlib's key does.")
    lstm_use_prev_reward: bool = key(
        False, "The recurrent cell also reads the previous reward (the reward the learner trains on; 0 at an "
        "episode's first step), as RLlib's key does.")
    encoder: str | None = key(
        None, "Your own encoder, `pkg.module:Class`, built as `Class(observation_space, model_config)`: an "
        "`nn.Module` with an integer `out_dim` whose forward maps observations to float features [N, out_dim]; "
        "every network of every algorithm uses it in place of the catalog's (docs: Extending rlrun). null = the "
        "catalog's MLP / CNN.")
    module_class: str | None = key(
        None, "Your own RLModule, `pkg.module:Class`, built as `Class(observation_space, action_space, "
        "model_config)`, in place of the algorithm's default module; it must give the outputs the algorithm's "
        "loss reads (docs: Extending rlrun). null = the algorithm's own.")


class ConsoleMode(str, Enum):
    rich = "rich"
    plain = "plain"
    none = "none"


@dataclass
class LoggerSchema:
    """metrics.jsonl, TensorBoard and the console; `logger=mlflow|wandb` add a tracker (rlrun/run/trackers)."""

    name: str = key("default", "The logger, as picked with `logger=<name>`; set by the option's file.")
    console: ConsoleMode = key(ConsoleMode.rich, "Console progress: a live `rich` table (plain when stdout is "
                               "not a terminal), `plain` lines, or `none`.", choices=[m.value for m in ConsoleMode])
    tensorboard: bool = key(True, "Also write TensorBoard event files into the run directory.")
    smoothing_episodes: int = key(
        100, "Episodes in the moving window behind env_runners/episode_return_mean (RLlib: 100).", bounds=">= 1")
    console_metrics: list[str] = key(
        doc="Metrics the console shows beside the return, by their metrics.jsonl key (e.g. a callback's "
        "`env_runners/win_rate`); `rlrun-report` tabulates them too.", default_factory=list)


@dataclass
class MlflowLoggerSchema(LoggerSchema):
    """`logger=mlflow`: every run is also an MLflow run (the `mlflow` extra)."""

    name: str = override(LoggerSchema, "name", "mlflow")
    tracking_uri: str = key("./mlruns", "Where MLflow records: a server (http://127.0.0.1:5000), a database "
                            "(sqlite:///mlflow.db) or a local directory (a file store).")
    experiment: str = key("rlrun", "The MLflow experiment the run is filed under.")
    artifacts: bool = key(True, "Upload learning_curve.png and the final checkpoint with the run.")


class WandbMode(str, Enum):
    offline = "offline"  # written under the run directory; `wandb sync` uploads it later
    online = "online"


@dataclass
class WandbLoggerSchema(LoggerSchema):
    """`logger=wandb`: every run is also a Weights & Biases run (the `wandb` extra)."""

    name: str = override(LoggerSchema, "name", "wandb")
    project: str = key("rlrun", "The W&B project the run is filed under.")
    mode: WandbMode = key(WandbMode.offline, "`offline` writes under the run directory, no network or account "
                          "needed until `wandb sync`; `online` uploads as it runs.",
                          choices=[m.value for m in WandbMode])
    artifacts: bool = key(True, "Upload learning_curve.png and the final checkpoint with the run.")


# The options of the logger group beside `default`, each with the keys of its tracker.
LOGGER_SCHEMAS: dict[str, type] = {"mlflow": MlflowLoggerSchema, "wandb": WandbLoggerSchema}


@dataclass
class StopSchema:
    """Stop at whichever criterion is reached first; null disables one."""

    timesteps: int | None = key(1_000_000, "Stop after this many env steps sampled (dataset rows read, offline); "
                                "null = no limit.", bounds="> 0")
    iterations: int | None = key(None, "Stop after this many training iterations; null = no limit.", bounds="> 0")
    time_s: float | None = key(None, "Stop after this many seconds of training; null = no limit.", bounds="> 0")
    return_mean: float | None = key(None, "Stop once the mean training episode return (the evaluation's, for offline "
                                    "algorithms) reaches this; null = never.")


@dataclass
class RaySchema:
    """The Ray cluster, used when `env_runners.num > 0`, `learners.num > 0` or `address` is set."""

    address: str | None = key(None, "null = start a local Ray instance for this run; `auto` or `host:port` = join "
                              "a running cluster.")
    dashboard: bool = key(False, "Start Ray's dashboard with a local instance.")
    num_cpus: int | None = key(None, "CPUs of a started local instance; null = what the experiment asks for, at "
                               "least this machine's cores.")
    num_gpus: int | None = key(None, "GPUs of a started local instance; null = what the experiment asks for, at "
                               "least this machine's GPUs.")


@dataclass
class CheckpointSchema:
    """Checkpoints under <run>/checkpoints: periodic ones, `final`, and `best` by evaluation return."""

    every_iterations: int = key(0, "Save a checkpoint every this many iterations; 0 = only the final one.",
                                bounds=">= 0", note="0 = final only")
    keep_last: int | None = key(None, "Periodic checkpoints to keep, newest first; 0 or null = all (`final` and "
                                "`best` are kept besides).", bounds=">= 0", note="0/null = keep all")
    replay_buffer: bool = key(
        True, "Include an off-policy algorithm's replay buffer; false for huge buffers: a run resumed from such a "
        "checkpoint refills an empty buffer before it learns again. Safe to change on resume.")


@dataclass
class EvaluationSchema:
    """Greedy evaluation episodes on an env runner of their own, logged as `evaluation/...`."""

    every_iterations: int = key(0, "Evaluate every this many iterations; 0 = only once, at the end of the run.",
                                bounds=">= 0", note="0 = at the end only")
    episodes: int = key(10, "Episodes per evaluation, acting greedily.", bounds=">= 1")


@dataclass
class OfflineSchema:
    """`.offline_data(...)`: the recorded dataset offline algorithms (BC, MARWIL) train from."""

    dataset: str | None = key(None, "A Minari dataset: a directory, or a dataset id in the local Minari root "
                              "($MINARI_DATASETS_PATH); null = none (offline algorithms need one).")
    memory_rows: int = key(1_000_000, "Dataset rows each learner holds in memory while it streams its shard "
                           "(episodes are read from disk in chunks); at least train_batch_size.")


@dataclass
class MultiAgentSchema:
    """`.multi_agent(...)`: which policy acts for which agent of a PettingZoo env (rlrun/env/multi_agent/)."""

    policies: Any = key("shared", "`shared` (one policy for all agents), `independent` (one per agent id), or a "
                        "list of policy ids.")
    policy_mapping: dict[str, str] = key(
        doc="With a list of policies: agent-id glob pattern -> policy id, first match wins.", default_factory=dict)
    policies_to_train: list[str] | None = key(
        None, "Policies the learners update; null = all (the others act with the weights they start with).")
    init_from: str | None = key(
        None, "An algorithm checkpoint (<run>/checkpoints/final, ...) whose modules start this run's modules of the "
        "same id, e.g. a fixed opponent left out of policies_to_train; null = start from scratch.")


# The schema every option of a group inherits; `algo` has one per algorithm (registry.algorithm_schemas).
GROUP_SCHEMAS: dict[str, type] = {
    "env": EnvSchema,
    "env_runners": EnvRunnersSchema,
    "learners": LearnersSchema,
    "model": ModelSchema,
    "logger": LoggerSchema,
}


# The algorithms' schemas by `algo=` name, as the algorithm registry (rlrun/algorithms/registry.py) hands them to
# `register_schemas`: config code reads them here and never imports the algorithms, which sit above it.
_ALGORITHM_SCHEMAS: dict[str, type] = {}


def register_schemas(algorithm_schemas: Mapping[str, type]) -> None:
    """Put every group's schema into Hydra's ConfigStore (group files inherit from them), with the algorithms'
    schemas by name: `register_schemas(rlrun.algorithms.registry.algorithm_schemas())`."""
    if _ALGORITHM_SCHEMAS and dict(algorithm_schemas) == _ALGORITHM_SCHEMAS:
        return  # stored already: the CLI, a run's job and its config checks each ask (~0.07 s a time)
    # Imported here, not at the top: env runner and learner actors read the schemas but never compose, and Hydra's
    # import is ~0.25 s of each actor's start.
    from hydra.core.config_store import ConfigStore

    _ALGORITHM_SCHEMAS.clear()
    _ALGORITHM_SCHEMAS.update(algorithm_schemas)
    cs = ConfigStore.instance()
    # Under schema/<group> so they do not show up as choices of the group itself.
    for name, schema in algorithm_schemas.items():
        cs.store(group="schema/algo", name=name, node=schema)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=f"schema/{group}", name=group, node=schema)
    for name, schema in LOGGER_SCHEMAS.items():
        cs.store(group="schema/logger", name=name, node=schema)
    cs.store(name="run_schema", node=RunSchema)


def registered_algorithm_schemas() -> dict[str, type]:
    """The algorithm schemas `register_schemas` received, by name."""
    if not _ALGORITHM_SCHEMAS:
        raise RuntimeError("no algorithm schemas: call register_schemas(algorithm_schemas()) first")
    return dict(_ALGORITHM_SCHEMAS)


@dataclass
class RunSchema:
    """Top-level keys beside the groups."""

    seed: int = key(0, "Seed of the networks, the env runners' envs and the replay buffer; the seeds derived from "
                    "it must stay within numpy's [0, 2**32 - 1].")
    stop: StopSchema = key(doc="When the run ends.", default_factory=StopSchema)
    checkpoint: CheckpointSchema = key(doc="What the run saves to resume or evaluate from.",
                                       default_factory=CheckpointSchema)
    evaluation: EvaluationSchema = key(doc="Greedy evaluation episodes.", default_factory=EvaluationSchema)
    resume: str | None = key(None, "A run directory or checkpoint directory to continue (`rlrun resume=<dir>`); "
                             "null = a new run.")
    callbacks: list[Any] = key(
        doc="Your Callback subclasses, `[pkg.module:Class, ...]`: hooks on the env runners (episode start, step, "
        "end) and the driver (algorithm built, iteration result, checkpoint, evaluation); docs: Callbacks.",
        default_factory=list)
    ray: RaySchema = key(doc="The Ray cluster the run starts or joins.", default_factory=RaySchema)
    offline: OfflineSchema = key(doc="The recorded dataset of offline algorithms.", default_factory=OfflineSchema)
    multi_agent: MultiAgentSchema = key(doc="Policies of a PettingZoo env's agents.", default_factory=MultiAgentSchema)
    # The groups: each option's schema (GROUP_SCHEMAS, algorithm_schemas()) types them once one is picked.
    algo: Any = key(None, "The algorithm and its training keys (`algo=<name>`).")
    env: Any = key(None, "The env (`env=<name>`).")
    env_runners: Any = key(None, "Sampling: EnvRunner actors, envs per runner, normalization.")
    learners: Any = key(None, "Training resources: learner actors, GPUs.")
    model: Any = key(None, "The default actor-critic network.")
    logger: Any = key(None, "metrics.jsonl, TensorBoard, the console and a tracker (`logger=<name>`).")

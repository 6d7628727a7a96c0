"""Every option of every config group composes with Hydra, converts to the builder and validates.

Composition goes through Hydra's compose API on the packaged configs (`rlrun.conf`), the same
configs and schemas the CLI uses, so a broken YAML file, a schema/YAML mismatch or a value
that does not reach `AlgorithmConfig` fails here without starting a run.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from importlib import resources
from pathlib import Path

import gymnasium as gym
import hydra
import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.algorithm import EVALUATION_WORKER_INDEX
from rlrun.algorithms.algorithm_config import MAX_NUMPY_SEED, AlgorithmConfig
from rlrun.algorithms.from_config import build_algorithm_config
from rlrun.algorithms.offline import OfflineConfig
from rlrun.algorithms.ppo.ppo import PPOConfig, PPOSchema
from rlrun.algorithms.registry import algorithm_schemas, get_algorithm_config_class
from rlrun.config.errors import ConfigError
from rlrun.config.schema import register_schemas
from rlrun.config.validation import validate_run
from rlrun.core import Columns
from rlrun.env import EnvRunner
from rlrun.env.env_creation import env_spaces
from rlrun.env.env_runner import WORKER_SEED_STRIDE
from rlrun.env.env_runner_actors import RESTART_SEED_STRIDE

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # `user_envs` must be importable for env.id=user_envs:TinyEnv
    sys.path.insert(0, str(TESTS_DIR))

# The options each group is known to ship; the parametrization below discovers them from the package.
EXPECTED_OPTIONS = {
    "algo": {"ppo", "td3"},
    "env": {"cartpole", "acrobot", "pendulum", "lunarlander", "lunarlander_continuous", "halfcheetah", "hopper",
            "walker2d", "ant", "humanoid"},
    "model": {"default"},
    "learners": {"default"},
    "env_runners": {"default"},
    "logger": {"default", "mlflow", "wandb"},
    "experiment": {"cartpole_ppo_fast"},
}
ENV_IDS = {"cartpole": "CartPole-v1", "acrobot": "Acrobot-v1", "pendulum": "Pendulum-v1",
           "lunarlander": "LunarLander-v3", "lunarlander_continuous": "LunarLanderContinuous-v3",
           "multi_cartpole": "rlrun.env.multi_agent.multi_cartpole:MultiCartPole",
           "simple_spread": "mpe2.simple_spread_v3", "atari": "ALE/Pong-v5", "minigrid": "MiniGrid-DoorKey-5x5-v0",
           "tictactoe": "pettingzoo.classic.tictactoe_v3", "stateless_cartpole": "StatelessCartPole-v1",
           "stateless_pendulum": "StatelessPendulum-v1", "halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5",
           "walker2d": "Walker2d-v5", "ant": "Ant-v5", "humanoid": "Humanoid-v5"}


def group_options(group: str) -> list[str]:
    """The `<group>=<option>` choices shipped in the package: rlrun/conf/<group>/*.yaml."""
    folder = resources.files("rlrun.conf").joinpath(group)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


ALL_OPTIONS = [(group, option) for group in EXPECTED_OPTIONS for option in group_options(group)]


def compose(*overrides: str) -> DictConfig:
    register_schemas(algorithm_schemas())
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        return hydra.compose(config_name="config", overrides=list(overrides))


def build(*overrides: str) -> tuple[DictConfig, AlgorithmConfig]:
    """Compose, convert and validate exactly as `run_experiment` does."""
    return convert(compose(*overrides))


def convert(cfg: DictConfig) -> tuple[DictConfig, AlgorithmConfig]:
    """Validate, convert and validate a composed config exactly as `run_experiment` does."""
    validate_run(cfg)
    config = build_algorithm_config(cfg)
    config.validate()
    return cfg, config


def test_every_expected_option_is_shipped():
    for group, expected in EXPECTED_OPTIONS.items():
        assert expected <= set(group_options(group)), group


@pytest.fixture(scope="module")
def cartpole_dataset(tmp_path_factory) -> str:
    """A one-episode CartPole dataset, for the offline algorithms (and presets) to validate against."""
    from rlrun.data.offline.writer import RecordedEpisode, write_dataset

    env = gym.make("CartPole-v1")
    path = tmp_path_factory.mktemp("data") / "cartpole-v0"
    obs = env.observation_space.sample()
    episode = RecordedEpisode(observations=np.stack([obs, obs]), actions=np.array([0]), rewards=np.array([1.0]),
                              terminations=np.array([True]), truncations=np.array([False]),
                              action_logp=np.zeros(1))
    write_dataset(str(path), [episode], env_id="CartPole-v1", observation_space=env.observation_space,
                  action_space=env.action_space, algorithm_name="test", rlrun_metadata={})
    return str(path)


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_group_option_composes_and_validates(group: str, option: str, cartpole_dataset: str):
    # An algorithm for Box actions only (SAC) is composed with a Box env: the default CartPole is Discrete.
    box_only = group == "algo" and gym.spaces.Discrete not in get_algorithm_config_class(option).supported_action_spaces
    overrides = [f"{group}={option}", *(["env=pendulum"] if box_only else [])]
    cfg = compose(*overrides)
    # An offline algorithm (or preset) validates against a dataset made here (the presets' own are made by a script):
    # composed again with it. Any other is converted as composed (one composition, not two).
    if issubclass(get_algorithm_config_class(cfg.algo.name), OfflineConfig):
        cfg, config = build(*overrides, f"offline.dataset={cartpole_dataset}")
    else:
        cfg, config = convert(cfg)
    assert type(config) is get_algorithm_config_class(cfg.algo.name)
    if group == "env":
        assert config.env == cfg.env.id == ENV_IDS[option]
        if config.is_multi_agent:
            spaces = list(config.build_policy_mapping(config.make_multi_agent_env()).spaces.values())
        else:
            spaces = [env_spaces(config.env_spec())]
        for obs_space, act_space in spaces:
            assert isinstance(obs_space, gym.spaces.Box)
            assert isinstance(act_space, config.supported_action_spaces)
    if group == "algo":
        assert cfg.algo.name == option


def test_defaults_match_the_python_builder():
    """The composed default config and a bare `PPOConfig()` hold the same values (one source of defaults)."""
    cfg, config = build()
    assert cfg.env.id == "CartPole-v1"
    assert cfg.algo.name == "ppo"
    assert vars(config) == vars(PPOConfig())
    for f in dataclasses.fields(PPOSchema):
        if f.name not in ("name", "learner_class"):
            assert getattr(config, f.name) == getattr(PPOSchema(), f.name), f.name
    assert config.learner_class is None
    assert config.get_learner_class().__name__ == "PPOTorchLearner"


BUILDER_VALUES = [
    (["algo.lr=0.01"], "lr", 0.01),
    (["algo.gamma=0.9"], "gamma", 0.9),
    (["algo.lambda_=0.8"], "lambda_", 0.8),
    (["algo.clip_param=0.3"], "clip_param", 0.3),
    (["algo.entropy_coeff=0.01"], "entropy_coeff", 0.01),
    (["algo.grad_clip=null"], "grad_clip", None),
    (["algo.vf_clip_param=null"], "vf_clip_param", None),
    (["algo.train_batch_size=512", "algo.minibatch_size=64"], "train_batch_size", 512),
    (["algo.train_batch_size=512", "algo.minibatch_size=64"], "minibatch_size", 64),
    (["algo.num_epochs=3"], "num_epochs", 3),
    (["algo.use_kl_loss=true"], "use_kl_loss", True),
    (["algo.lr=0.001", "algo.lr_schedule=[[0.0,0.001],[1000.0,0.0001]]"], "lr_schedule",
     [[0.0, 0.001], [1000.0, 0.0001]]),
    (["env_runners.num_envs_per_runner=3"], "num_envs_per_env_runner", 3),
    (["env_runners.rollout_fragment_length=50"], "rollout_fragment_length", 50),
    (["env_runners.num_cpus_per_env_runner=2"], "num_cpus_per_env_runner", 2.0),
    (["learners.num_cpus_per_learner=2"], "num_cpus_per_learner", 2.0),
    (["env.id=Acrobot-v1"], "env", "Acrobot-v1"),
    (["env=pendulum", "+env.env_config.g=9.0"], "env_config", {"g": 9.0}),
    (["env.max_episode_steps=100"], "max_episode_steps", 100),
    (["seed=7"], "seed", 7),
]


@pytest.mark.parametrize(
    ("overrides", "attr", "expected"), BUILDER_VALUES, ids=[f"{' '.join(o)}->{a}" for o, a, _ in BUILDER_VALUES]
)
def test_composed_value_reaches_the_builder(overrides: list[str], attr: str, expected):
    _, config = build(*overrides)
    assert getattr(config, attr) == expected


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("model.hiddens=[32]", "hiddens", [32]),
        ("model.hiddens=[16,8,4]", "hiddens", [16, 8, 4]),
        ("model.activation=relu", "activation", "relu"),
        ("model.vf_share_layers=true", "vf_share_layers", True),
    ],
)
def test_model_value_reaches_model_config(override: str, key: str, expected):
    _, config = build(override)
    assert config.model_config[key] == expected


def test_log_std_init_starts_the_gaussian_policys_log_std_weight_and_is_refused_where_there_is_none():
    _, config = build("env=pendulum", "model.log_std_init=-2")
    module = config.get_rl_module_spec().build(*config._env_spaces()[0])
    torch.testing.assert_close(module.log_std.detach(), torch.tensor([-2.0]))
    for overrides in (["env=cartpole"], ["env=pendulum", "algo=sac"]):
        with pytest.raises(ConfigError, match=r"^model.log_std_init starts the log std weight of a Gaussian policy: "
                           r"algo=\w+ on action space .* has none; it is for Box actions with ppo, impala, appo, bc "
                           r"and marwil \(got -2.0\)$"):
            build(*overrides, "model.log_std_init=-2")


def test_rollout_fragment_length_auto_splits_the_batch():
    _, config = build("algo.train_batch_size=1000", "env_runners.num_envs_per_runner=4")
    assert config.rollout_fragment_length == "auto"
    assert config.get_rollout_fragment_length() == 250


def test_lr_schedule_accepts_integer_timesteps():
    """The schema documents `[[0, 1e-3], [100000, 1e-4]]`; integer timesteps are the natural spelling."""
    _, config = build("algo.lr=0.001", "algo.lr_schedule=[[0,0.001],[100000,0.0001]]")
    assert [[float(t), lr] for t, lr in config.lr_schedule] == [[0.0, 0.001], [100000.0, 0.0001]]


# YAML section.key -> AlgorithmConfig attribute, for the sections a preset may set (see config/convert.py).
BUILDER_ATTRS = {
    "env.id": "env", "env.max_episode_steps": "max_episode_steps",
    "env_runners.num": "num_env_runners", "env_runners.num_envs_per_runner": "num_envs_per_env_runner",
    "env_runners.rollout_fragment_length": "rollout_fragment_length",
    "learners.num": "num_learners", "learners.num_cpus_per_learner": "num_cpus_per_learner",
    "learners.num_gpus_per_learner": "num_gpus_per_learner",
}


def preset(name: str) -> DictConfig:
    """The experiment file as written (not composed): what it promises to set."""
    text = resources.files("rlrun.conf").joinpath("experiment", f"{name}.yaml").read_text()
    return OmegaConf.create(text)


def as_plain(value):
    """OmegaConf containers -> Python lists/dicts, resolved (`${algo.lr}` in a schedule); ints and floats
    compare equal either way."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def test_experiment_preset_changes_algo_values_and_stop():
    written = preset("cartpole_ppo_fast")
    defaults = compose()
    cfg, config = build("experiment=cartpole_ppo_fast")
    assert config.env == "CartPole-v1"

    # Every algo key in the file reaches the builder, and the preset changes some of them.
    assert written.algo, "the preset sets no algo values"
    for key, value in written.algo.items():
        assert as_plain(getattr(config, key)) == as_plain(value), f"algo.{key}"
    assert any(as_plain(written.algo[k]) != as_plain(defaults.algo[k]) for k in written.algo)
    for section in ("env_runners", "learners", "env"):
        for key, value in written.get(section, {}).items():
            assert getattr(config, BUILDER_ATTRS[f"{section}.{key}"]) == value, f"{section}.{key}"

    # It sets a return threshold (the default has none) and keeps a timestep budget.
    assert defaults.stop.return_mean is None
    assert written.stop.return_mean is not None
    assert cfg.stop.return_mean == written.stop.return_mean
    assert cfg.stop.timesteps == written.stop.get("timesteps", defaults.stop.timesteps)

    # Keys the preset does not mention keep their defaults.
    for key in defaults.algo:
        if key not in written.algo:
            assert as_plain(cfg.algo[key]) == as_plain(defaults.algo[key]), f"algo.{key}"
    assert config.model_config == OmegaConf.to_container(defaults.model)
    assert config.get_rollout_fragment_length() == -(-config.train_batch_size // config.num_envs_per_env_runner)


def test_command_line_overrides_win_over_the_preset():
    written = preset("cartpole_ppo_fast")
    cfg, config = build("experiment=cartpole_ppo_fast", "algo.lr=0.005", "env=pendulum", "stop.return_mean=-200")
    assert config.lr == 0.005
    assert config.env == "Pendulum-v1"
    assert config.train_batch_size == written.algo.train_batch_size  # still from the preset
    assert cfg.stop.return_mean == -200


def test_user_env_class_validates():
    cfg, config = build("env.id=user_envs:TinyEnv")
    assert config.env == cfg.env.id == "user_envs:TinyEnv"
    obs_space, act_space = env_spaces(config.env_spec())
    assert isinstance(obs_space, gym.spaces.Box)
    assert act_space == gym.spaces.Discrete(2)


def test_user_env_class_gets_env_config():
    _, config = build("env.id=user_envs:TinyEnv", "+env.env_config.length=5", "env.max_episode_steps=3")
    assert config.env_config == {"length": 5}
    assert config.max_episode_steps == 3


@pytest.mark.parametrize("num_env_runners", [0, 2], ids=["embedded", "ray"])
def test_seed_range_keeps_every_derived_seed_a_numpy_seed(num_env_runners: int):
    """The largest valid seed makes the largest derived seed exactly 2**32 - 1, and numpy takes it."""
    config = PPOConfig().env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=3)
    config.debugging(seed=MAX_NUMPY_SEED + 1)
    with pytest.raises(ConfigError, match=r"^seed must be an integer in \[0, (\d+)\]") as info:
        config.validate()
    top = int(re.search(r"\[0, (\d+)\]", str(info.value)).group(1))
    config.debugging(seed=top).validate()
    for bad in (top + 1, -1, True, 1.5):
        with pytest.raises(ConfigError, match="^seed must be"):
            config.copy().debugging(seed=bad).validate()

    # Derived as env_runner.py / env_runner_actors.py / algorithm.py do: runner index, sub-env, restarts.
    restarts = config.max_num_env_runner_restarts if num_env_runners else 0
    largest = (top + WORKER_SEED_STRIDE * max(num_env_runners, EVALUATION_WORKER_INDEX) + 3 - 1
               + RESTART_SEED_STRIDE * restarts)
    assert largest == MAX_NUMPY_SEED
    np.random.seed(largest)
    # Seeds its envs and RNG from `top`.
    runner = EnvRunner(config.env_runner_spec(), worker_index=EVALUATION_WORKER_INDEX)
    assert runner.sample(num_timesteps=6)[Columns.OBS].shape[:2] == (2, 3)
    runner.stop()

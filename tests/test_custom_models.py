"""Users' own networks (issue 26): `model.encoder` and `model.module_class` through the CLI, `rlrun-eval`, Ray
env runners and learners, structured observations, and the one-line errors of classes that break their contract.

The classes live in tests/user_models.py, which CLI subprocesses and Ray workers import by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import ray
import user_models
from conftest import RLRUN, pythonpath_with_tests
from omegaconf import OmegaConf

import rlrun
from rlrun.algorithms.algorithm import load_module_weights
from rlrun.algorithms.registry import get_algorithm_config_class
from rlrun.config.errors import ConfigError
from rlrun.core.columns import DEFAULT_MODULE_ID
from rlrun.core.packed_space import PackedSpace

# The module fixture's run is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("custom_models")

RLRUN_EVAL = str(Path(sys.executable).with_name("rlrun-eval"))
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONPATH": pythonpath_with_tests()}
TINY = ["stop.timesteps=null", "stop.iterations=2", "env_runners.num_envs_per_runner=2", "algo.train_batch_size=64",
        "algo.minibatch_size=32", "algo.num_epochs=1", "evaluation.episodes=2", "logger.tensorboard=false",
        "logger.console=plain"]


def rlrun_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([RLRUN, *TINY, *args], capture_output=True, text=True, timeout=240, cwd=cwd, env=ENV)


@pytest.fixture(scope="module")
def module_run(tmp_path_factory) -> Path:
    """A PPO run on CartPole whose whole module is the user's ActorCritic."""
    run_dir = tmp_path_factory.mktemp("custom") / "run"
    proc = rlrun_cli("algo=ppo", "model.module_class=user_models:ActorCritic", f"hydra.run.dir={run_dir}",
                     cwd=run_dir.parent)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_module_class_trains_checkpoints_by_name_and_evaluates(module_run: Path) -> None:
    weights = load_module_weights(module_run / "checkpoints" / "final")[DEFAULT_MODULE_ID]
    assert set(weights) == {"torso.0.weight", "torso.0.bias", "pi.weight", "pi.bias", "vf.weight", "vf.bias"}
    saved = OmegaConf.load(module_run / ".hydra" / "config.yaml")
    assert saved.model.module_class == "user_models:ActorCritic"  # the class by name; the checkpoint holds weights
    proc = subprocess.run([RLRUN_EVAL, f"checkpoint={module_run}", "episodes=2"], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "2 greedy episodes" in proc.stdout and "return  mean" in proc.stdout


def test_a_module_class_run_resumes_and_loads_from_its_checkpoint(module_run: Path) -> None:
    result = rlrun.train(resume=str(module_run), stop={"iterations": 3})
    assert result.run_dir == module_run and result.metrics["training_iteration"] == 3
    policy = rlrun.load(result.final_checkpoint)
    assert isinstance(policy.modules[DEFAULT_MODULE_ID], user_models.ActorCritic)
    assert policy.compute_actions(np.zeros((4, 4), np.float32)).shape == (4,)


def test_encoder_replaces_the_catalogs_in_every_network_of_a_cli_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = rlrun_cli("algo=ppo", "model.encoder=user_models:TinyEncoder", "model.hiddens=[8]",
                     f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    weights = load_module_weights(run_dir / "checkpoints" / "final")[DEFAULT_MODULE_ID]
    # Policy and value networks: the user's 4 -> 16 layer, then the catalog's hidden layer of 8 on its features.
    for network in ("pi", "vf"):
        assert weights[f"{network}.encoder.net.0.weight"].shape == (16, 4)
        assert weights[f"{network}.head.0.weight"].shape == (8, 16)


@pytest.mark.parametrize("algo, env", [("ppo", "CartPole-v1"), ("impala", "CartPole-v1"), ("appo", "CartPole-v1"),
                                       ("dqn", "CartPole-v1"), ("sac", "Pendulum-v1")])
def test_every_algorithm_builds_its_networks_on_the_users_encoder(algo: str, env: str) -> None:
    config = get_algorithm_config_class(algo)().environment(env).rl_module(
        model_config={"encoder": "user_models:TinyEncoder"})
    config.validate()
    spec = config.env_runner_spec()
    probe = gym.make(env)
    module = spec.module.build(probe.observation_space, probe.action_space)
    encoders = [m for m in module.modules() if isinstance(m, user_models.TinyEncoder)]
    default = get_algorithm_config_class(algo)().environment(env).get_rl_module_spec().build(
        probe.observation_space, probe.action_space)
    # As many user encoders as the default module has encoders (policy, value, Q networks, targets).
    assert len(encoders) == sum(type(m).__name__.endswith("Encoder") for m in default.modules()) > 0


def test_a_structured_observation_reaches_the_users_encoder_as_its_structure() -> None:
    config = (get_algorithm_config_class("ppo")().environment("user_models:PositionEnv")
              .env_runners(num_envs_per_env_runner=2).training(train_batch_size=32, minibatch_size=16, num_epochs=1)
              .rl_module(model_config={"encoder": "user_models:DictEncoder"}))
    algo = config.build_algo()
    try:
        result = algo.train()
        module = algo.env_runner_group._local.module
    finally:
        algo.stop()
    assert result["num_env_steps_sampled_lifetime"] > 0
    assert isinstance(module.observation_space, PackedSpace)
    # DictEncoder one-hots the position (5) beside the velocity (2): its out_dim proves it got the Dict space.
    assert module.pi.encoder.out_dim == 7 and isinstance(module.pi.encoder.encoder, user_models.DictEncoder)


@pytest.mark.parametrize("key, name, message", [
    ("encoder", "NoOutDim", "model.encoder 'user_models:NoOutDim' must set an integer out_dim >= 1"),
    ("encoder", "WrongWidth", "forward must return float features [N, out_dim] = [3, 16] for 3 observations; "
                              "got a torch.float32 tensor of shape [3, 17]"),
    ("encoder", "NotAModule", "model.encoder 'user_models:NotAModule' is not a Module subclass"),
    ("encoder", "Missing", "model.encoder 'user_models:Missing' cannot be imported"),
    ("module_class", "NoValues", "lacks the method compute_values, which algo=ppo calls"),
    ("module_class", "NoVfPreds", "forward_train must return a dict with a tensor under 'vf_preds'"),
    ("module_class", "WrongValueShape", "forward_train's vf_preds must have shape [3] here; got [3, 1]"),
    ("module_class", "TinyEncoder", "model.module_class 'user_models:TinyEncoder' is not a RLModule subclass"),
])
def test_a_class_that_breaks_its_contract_fails_validation_naming_what(key: str, name: str, message: str) -> None:
    config = get_algorithm_config_class("ppo")().environment("CartPole-v1").rl_module(
        model_config={key: f"user_models:{name}"})
    with pytest.raises(ConfigError) as error:
        config.validate()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_contract_is_the_algorithms(tmp_path: Path) -> None:
    """DQN's learner needs a DQNModule (targets, epsilon): the same ActorCritic PPO takes is refused, on the CLI
    as one line, exit status 2, no run directory left."""
    proc = rlrun_cli("algo=dqn", "model.module_class=user_models:ActorCritic",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("rlrun: error: model.module_class 'user_models:ActorCritic': algo=dqn needs a "
                                   "subclass of rlrun.algorithms.dqn.dqn_module.DQNModule")
    assert not (tmp_path / "run").exists()


@pytest.mark.ray
def test_ray_env_runners_and_learners_import_the_users_classes_by_name(ray_cluster) -> None:
    """One Ray run covers both sides: an env-runner actor and a Learner actor each build the user's class from its
    name, and the weights the learner trained reach the runner."""
    config = (get_algorithm_config_class("ppo")().environment("CartPole-v1")
              .env_runners(num_env_runners=1, num_envs_per_env_runner=2).learners(num_learners=1)
              .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
              .rl_module(model_config={"module_class": "user_models:ActorCritic"}))
    algo = config.build_algo()
    try:
        result = algo.train()
        actor = algo.env_runner_group._remote._actors[1]
        remote_class = ray.get(actor.__ray_call__.remote(lambda runner: type(runner.module).__qualname__))
        remote_weights = ray.get(actor.__ray_call__.remote(lambda runner: runner.module.get_state()))
        (learner_actor,) = algo.learner_group._learner._actors
        learner_class = ray.get(learner_actor.__ray_call__.remote(
            lambda rank: type(rank._learner.module[DEFAULT_MODULE_ID]).__qualname__))
        learner_weights = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]  # the Learner actor's
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled"] > 0 and result["num_env_steps_trained_lifetime"] > 0
    assert remote_class == "ActorCritic" and learner_class == "ActorCritic"
    assert set(remote_weights) == set(learner_weights)
    assert all((remote_weights[k] == learner_weights[k]).all() for k in learner_weights)  # synced after the update

"""The CUDA path of Learners (`learners.num_gpus_per_learner=1`): local (PPO, DQN, SAC, IMPALA), one actor, two over
nccl; needs GPUs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from target_env import TargetEnv
from test_dqn import cartpole_config as dqn_config
from test_dqn import fixed_replay_batch as dqn_batch
from test_impala import cartpole_config as impala_config
from test_sac import fixed_replay_batch as sac_batch
from test_sac import target_config as sac_config

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.cluster.session import ddp_backend
from rlrun.env import EnvRunner

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def assert_gpu_update_matches_cpu(config: AlgorithmConfig, batch: dict, env: gym.Env, updates: int = 1) -> None:
    """The local learner on `cuda:0` and on the CPU, from the same state, end `updates` updates equal."""
    cpu = config.copy().learners(num_gpus_per_learner=0).build_learner(env=env)
    gpu = config.copy().learners(num_gpus_per_learner=1).build_learner(env=env)
    cpu.build()
    gpu.build()
    gpu.set_state(cpu.get_state())
    assert next(gpu.module.parameters()).is_cuda
    for learner in (cpu, gpu):
        for _ in range(updates):
            learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 512})
    for name, w in cpu.get_state()["rl_module"]["default_policy"].items():
        np.testing.assert_allclose(gpu.get_state()["rl_module"]["default_policy"][name], w, atol=1e-4, err_msg=name)


def test_learner_trains_on_gpu_and_matches_cpu_update() -> None:
    config = PPOConfig().environment("CartPole-v1").training(train_batch_size=512, minibatch_size=128, num_epochs=2)
    assert_gpu_update_matches_cpu(config, EnvRunner(config.env_runner_spec()).sample(), gym.make("CartPole-v1"))


def test_dqn_learner_with_target_network_and_td_errors_on_gpu_matches_cpu() -> None:
    config = dqn_config(double_q=True, dueling=True, target_network_update_freq=0, tau=0.5, minibatch_size=32)
    assert_gpu_update_matches_cpu(config, dqn_batch(config, rows=128), gym.make("CartPole-v1"), updates=3)


def test_sac_learner_with_its_three_optimizers_on_gpu_matches_cpu() -> None:
    config = sac_config(minibatch_size=32)
    assert_gpu_update_matches_cpu(config, sac_batch(config, rows=128), TargetEnv(), updates=3)


def test_impala_learner_on_gpu_matches_cpu() -> None:
    config = impala_config()
    batch = EnvRunner(config.env_runner_spec()).sample()
    assert_gpu_update_matches_cpu(config, batch, gym.make("CartPole-v1"), updates=2)


def assert_gpu_learner_actors_match_cpu(num_learners: int) -> None:
    """`num_learners` actors with `num_gpus_per_learner=1` each see one GPU, and one update equals a CPU update."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=8, rollout_fragment_length=32)
        .training(train_batch_size=256, minibatch_size=256, num_epochs=2)
    )
    batch = EnvRunner(config.env_runner_spec()).sample()
    batch["loss_mask"][:] = True  # 256 rows: equal shards
    env = gym.make("CartPole-v1")
    cpu = config.build_learner(env=env)
    cpu.build()
    group = config.copy().learners(num_learners=num_learners, num_gpus_per_learner=1).build_learner_group(env=env)
    try:
        assert group._learner.devices == ["cuda:0"] * num_learners  # each actor sees only its own GPU
        group.set_state(cpu.get_state())
        group.update(batch=batch)
        gpu_weights = group.get_weights()["default_policy"]
    finally:
        group.stop()
    cpu.update(batch=batch)
    for name, w in cpu.get_state()["rl_module"]["default_policy"].items():
        np.testing.assert_allclose(gpu_weights[name], w, atol=1e-4, err_msg=name)


@pytest.mark.ray
def test_learner_actor_trains_on_its_own_gpu(ray_cluster) -> None:
    """One learner actor on a GPU matches a CPU update.

    With a single learner no process group forms, so this exercises neither DDP nor nccl:
    test_two_learner_actors_train_over_nccl does, where two GPUs exist.
    """
    assert_gpu_learner_actors_match_cpu(num_learners=1)


@pytest.mark.ray
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl between learners needs two GPUs, one per learner")
def test_two_learner_actors_train_over_nccl(ray_cluster) -> None:
    """Two learner actors, one whole GPU each, form an nccl process group; their DDP update equals the CPU one."""
    assert ddp_backend(PPOConfig().learners(num_learners=2, num_gpus_per_learner=1).num_gpus_per_learner) == "nccl"
    assert_gpu_learner_actors_match_cpu(num_learners=2)

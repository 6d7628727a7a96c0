"""The CUDA path of a local Learner (`learners.num_gpus_per_learner=1`); skipped without a GPU."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrun.algorithms.ppo import PPOConfig
from rlrun.env import EnvRunner

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_learner_trains_on_gpu_and_matches_cpu_update() -> None:
    config = PPOConfig().environment("CartPole-v1").training(train_batch_size=512, minibatch_size=128, num_epochs=2)
    batch = EnvRunner(config=config).sample()
    env = gym.make("CartPole-v1")
    cpu = config.copy().learners(num_gpus_per_learner=0).build_learner(env=env)
    gpu = config.copy().learners(num_gpus_per_learner=1).build_learner(env=env)
    cpu.build()
    gpu.build()
    gpu.set_state(cpu.get_state())
    assert next(gpu.module.parameters()).is_cuda
    cpu.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 512})
    gpu.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 512})
    for name, w in cpu.get_state()["rl_module"]["default_policy"].items():
        np.testing.assert_allclose(gpu.get_state()["rl_module"]["default_policy"][name], w, atol=1e-4, err_msg=name)

"""torch thread defaults: one thread for MLPs, the learner's CPUs for CNNs (issue 25), overridable, and shown."""

from __future__ import annotations

import os

import torch

from rlrun.algorithms.ppo import PPOConfig
from rlrun.cluster.session import ClusterInfo

CORES = len(os.sched_getaffinity(0))
PIXELS = "MiniGrid-Empty-5x5-v0"


def minigrid_config() -> PPOConfig:
    return (PPOConfig().environment(PIXELS, wrappers=["minigrid.wrappers:ImgObsWrapper"])
            .env_runners(num_envs_per_env_runner=2).training(train_batch_size=64, minibatch_size=32, num_epochs=1))


def test_mlps_train_on_one_thread_and_cnns_on_the_machine_s_cores() -> None:
    assert PPOConfig().learner_threads(images=False) == 1
    assert PPOConfig().learner_threads(images=True) == CORES
    # Env runner actors take their CPUs from the local learner's share.
    assert PPOConfig().env_runners(num_env_runners=1).learner_threads(images=True) == max(1, CORES - 1)
    # A learner actor gets what it reserves.
    assert PPOConfig().learners(num_learners=2, num_cpus_per_learner=3).learner_threads(images=True) == 3


def test_the_keys_override_the_defaults() -> None:
    assert PPOConfig().learners(num_threads_per_learner=5).learner_threads(images=False) == 5
    assert PPOConfig().env_runners(num_cpus_per_env_runner=2).env_runner_threads() == 2
    assert PPOConfig().env_runners(num_threads_per_env_runner=3).env_runner_threads() == 3


def test_a_cnn_learner_sets_its_threads_and_the_layout_line_says_so() -> None:
    config = minigrid_config()
    assert config.observes_images() and not PPOConfig().observes_images()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        algo = config.build_algo()
        try:
            assert torch.get_num_threads() == CORES
        finally:
            algo.stop()
    finally:
        torch.set_num_threads(before)
    threads = "1 thread" if CORES == 1 else f"{CORES} threads"
    layout = ClusterInfo().describe(config)
    assert layout == f"embedded mode: 1 local env runner, 1 local learner (cpu, {threads}), no Ray"


def test_an_env_runner_samples_with_its_own_threads_and_gives_the_learner_s_back() -> None:
    """Embedded mode: the local runner's forward passes run on env_runners.num_threads (1), the learner's CNN
    updates on its own count, in one process."""
    from rlrun.env import EnvRunner

    runner = EnvRunner(minigrid_config().env_runner_spec())
    seen: list[int] = []
    forward = runner.module.forward_exploration
    runner.module.forward_exploration = lambda batch: (seen.append(torch.get_num_threads()), forward(batch))[1]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        runner.sample(num_timesteps=8)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        runner.stop()

"""Checks every replay-buffer actor-critic's tests make the same way (importable as `off_policy_checks` with tests/
on the path): exact resume from a checkpoint with the buffer, Ray mode whose DDP learners update as the local one,
and a preset's final greedy evaluation within its env-step budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from test_dqn import deterministic, train

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.off_policy import OffPolicyConfig
from rlrun.algorithms.off_policy.off_policy import TD_ERROR
from rlrun.core.columns import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns


def assert_resume_is_exact(config: Callable[[], OffPolicyConfig], tmp_path: Path) -> None:
    """8 iterations straight equal 4, a checkpoint, and 4 more in a fresh algorithm restored from it."""
    straight = config().build_algo()
    try:
        expected = [deterministic(r) for r in train(straight, 8)]
    finally:
        straight.stop()
    first = config().build_algo()
    try:
        train(first, 4)
        first.save_to_path(tmp_path / "ckpt")
    finally:
        first.stop()
    resumed = config().build_algo()
    try:
        resumed.restore_from_path(tmp_path / "ckpt")
        got = [deterministic(r) for r in train(resumed, 4)]
    finally:
        resumed.stop()
    assert expected[4]["learners"] and got == expected[4:]


def assert_trains_on_ray_and_ddp_equals_local(config: OffPolicyConfig, env: gym.Env, tmp_path: Path) -> None:
    """`config` (env runner actors and 2 learners) trains 4 iterations; then its DDP learners update as the local
    learner does (`assert_ddp_updates_equal_the_local_learner`)."""
    algo = config.build_algo()
    try:
        last = train(algo, 4)[-1]
        assert last["env_runners"]["num_healthy_env_runners"] == config.num_env_runners
        assert last["num_learner_updates_lifetime"] > 0
        assert np.isfinite(last["learners"][DEFAULT_MODULE_ID]["qf_loss"])
        assert_ddp_updates_equal_the_local_learner(algo, config, env, tmp_path)
    finally:
        algo.stop()


def assert_preset_evaluates_at_least(run_cli: Callable, tmp_path: Path, preset: str, seed: int, max_steps: int,
                                     goal: float) -> None:
    """`rlrun experiment=<preset> seed=<seed>` ends within `max_steps` env steps with a final greedy evaluation of
    at least `goal`."""
    proc = run_cli(f"experiment={preset}", f"seed={seed}", "logger.tensorboard=false", timeout=900)
    assert proc.returncode == 0, proc.stderr
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["num_env_steps_sampled_lifetime"] <= max_steps
    assert last["evaluation/episode_return_mean"] >= goal, last["evaluation/episode_return_mean"]


def assert_ddp_updates_equal_the_local_learner(algo: Algorithm, config: OffPolicyConfig, env: gym.Env,
                                               tmp_path: Path) -> None:
    """On a batch from the algorithm's buffer, three updates of its DDP learners give the TD errors and weights
    (targets included) of one local learner restored from the group's checkpoint, RNG included."""
    local = config.copy().learners(num_learners=0).build_learner(env=env)
    local.build()
    local.restore_from_path(algo.learner_group.save_to_path(tmp_path / "learners"))
    batch = algo.replay_buffer.sample(config.train_batch_size, n_step=config.n_step, gamma=config.gamma, beta=0.5)
    batch.pop(Columns.INDICES)
    for step in range(3):
        timesteps = {"num_env_steps_sampled_lifetime": 10_000 + step}
        expected = local.update(batch=batch, timesteps=timesteps)[DEFAULT_MODULE_ID][TD_ERROR]
        for rank in algo.learner_group.update(batch=batch, timesteps=timesteps):
            np.testing.assert_allclose(rank[DEFAULT_MODULE_ID][TD_ERROR], expected, rtol=1e-4, atol=1e-5)
    remote = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
    for name, value in local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID].items():
        np.testing.assert_allclose(remote[name], value, rtol=1e-4, atol=1e-5, err_msg=name)

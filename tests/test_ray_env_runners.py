"""EnvRunner actors on a real local Ray cluster: parallel sampling and fault tolerance."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import psutil
import pytest
import ray
from conftest import connect_shared_ray

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.checkpointing import CheckpointError
from rlrun.env.env_runner_actors import EnvRunnerFailure

pytestmark = pytest.mark.ray


def small_config(env: str = "CartPole-v1", **env_config) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4)
        .training(train_batch_size=256, minibatch_size=128, num_epochs=1)
    )


@pytest.fixture(scope="module")
def crash_file(tmp_path_factory) -> Path:
    """While this file exists, the next CrashOnceEnv to step removes it and raises."""
    return tmp_path_factory.mktemp("crash") / "crash"


def crash_once_config(crash_file: Path) -> PPOConfig:
    return small_config("user_envs:CrashOnceEnv", crash_file=str(crash_file))


@pytest.fixture(scope="module")
def small_algo(_ray_worker_path, crash_file: Path):
    """One algorithm of 2 env runner actors on CrashOnceEnv (CartPole until its crash file exists), started once
    for the three tests below that need no other.

    The kill test runs first and asserts it starts with no restart; the env-error test counts restarts from
    its own crash on; the mode test saves and restores this algorithm's own state.
    """
    connect_shared_ray()  # as `ray_cluster`, which every test using this also requests
    algo = crash_once_config(crash_file).build_algo()
    yield algo
    algo.stop()


def runner_pid(algo, index: int) -> int:
    actor = algo.env_runner_group._remote._actors[index]
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()))


def test_killed_env_runner_is_replaced_and_training_goes_on(ray_cluster, small_algo) -> None:
    algo = small_algo
    first = algo.train()
    assert first["env_runners"]["num_healthy_env_runners"] == 2
    assert first["fault_tolerance"]["num_remote_worker_restarts"] == 0
    assert first["env_runners"]["num_env_steps_sampled"] > 128  # both runners' fragments were merged
    victim = runner_pid(algo, 1)
    os.kill(victim, signal.SIGKILL)
    psutil.Process(victim).wait(timeout=30)
    results = [algo.train() for _ in range(3)]
    replacement = runner_pid(algo, 1)
    # The iteration of the kill went on with the healthy runner; the replacement joined the next one.
    assert results[0]["env_runners"]["num_healthy_env_runners"] == 1
    assert [r["env_runners"]["num_healthy_env_runners"] for r in results[1:]] == [2, 2]
    assert all(r["fault_tolerance"]["num_remote_worker_restarts"] == 1 for r in results)
    assert replacement != victim
    steps = [first["num_env_steps_sampled_lifetime"]] + [r["num_env_steps_sampled_lifetime"] for r in results]
    assert steps == sorted(steps) and len(set(steps)) == 4


def test_frozen_env_runner_is_replaced_after_the_timeout_in_a_synchronous_algorithm(ray_cluster) -> None:
    """A SIGSTOPped runner answers nothing, so PPO's sample would wait for good: after `sample_timeout_s` it is
    replaced as a dead one is, and the iteration goes on with the other runner's fragment."""
    algo = small_config().env_runners(sample_timeout_s=3.0).build_algo()
    frozen = runner_pid(algo, 1)
    try:
        first = algo.train()
        os.kill(frozen, signal.SIGSTOP)
        results = [algo.train() for _ in range(3)]
        assert runner_pid(algo, 1) != frozen
        with contextlib.suppress(psutil.NoSuchProcess):  # replacing it killed it: it holds no CPU of the cluster
            psutil.Process(frozen).wait(timeout=30)
    finally:
        algo.stop()
        with contextlib.suppress(ProcessLookupError):  # Ray kills the frozen runner when it replaces it
            os.kill(frozen, signal.SIGKILL)
    assert first["fault_tolerance"]["num_remote_worker_restarts"] == 0
    assert [r["env_runners"]["num_healthy_env_runners"] for r in results] == [1, 2, 2]
    assert all(r["fault_tolerance"]["num_remote_worker_restarts"] == 1 for r in results)
    # The frozen iteration trained on runner 2's fragment alone (4 envs x 32 rows, autoreset rows not counted).
    assert results[0]["env_runners"]["num_env_steps_sampled"] <= 128 < first["env_runners"]["num_env_steps_sampled"]


def test_env_error_restarts_runner_within_limit_and_fails_clearly_beyond(ray_cluster, small_algo,
                                                                        crash_file: Path) -> None:
    algo = small_algo
    before = algo.train()
    assert before["env_runners"]["num_healthy_env_runners"] == 2
    restarts = before["fault_tolerance"]["num_remote_worker_restarts"]  # the kill test's, if it ran first
    crash_file.touch()
    result = algo.train()
    assert not crash_file.exists(), "no env stepped while the crash file existed"
    assert result["fault_tolerance"]["num_remote_worker_restarts"] == restarts + 1
    assert result["env_runners"]["num_healthy_env_runners"] == 1
    assert algo.train()["env_runners"]["num_healthy_env_runners"] == 2

    # One runner is enough to exceed a limit of no restart.
    strict = crash_once_config(crash_file).env_runners(num_env_runners=1)
    algo = strict.fault_tolerance(max_num_env_runner_restarts=0).build_algo()
    try:
        algo.train()
        crash_file.touch()
        with pytest.raises(EnvRunnerFailure, match=r"env_runners.max_restarts=0.*CrashOnceEnv crashed on purpose"):
            algo.train()
    finally:
        algo.stop()


def test_env_runner_state_is_restored_only_into_the_same_mode(ray_cluster, small_algo, crash_file: Path,
                                                              tmp_path: Path) -> None:
    embedded = crash_once_config(crash_file).env_runners(num_env_runners=0).build_algo()
    embedded.train()
    embedded.save_to_path(tmp_path / "embedded")
    embedded.stop()
    algo = small_algo
    algo.train()
    algo.save_to_path(tmp_path / "remote")
    algo.restore_from_path(tmp_path / "remote")  # same mode: fine
    with pytest.raises(CheckpointError, match="env_runners.num"):
        algo.restore_from_path(tmp_path / "embedded")

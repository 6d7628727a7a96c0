"""Learner actors that die (a real SIGKILL of a real Ray actor's process): the learner group is rebuilt, a new DDP
process group included, from the newest learner state, and the run goes on as if nothing had happened; past
`learners.max_restarts` it stops in one line with a final checkpoint of its last good state."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import connect_shared_ray, pythonpath_with_tests
from user_callbacks import learner_pids

from rlrun.algorithms.algorithm import load_module_weights
from rlrun.algorithms.appo import APPOConfig
from rlrun.algorithms.ppo import PPOConfig

pytestmark = pytest.mark.ray

RUN = ("learners.num=1", "env_runners.num_envs_per_runner=2", "algo.train_batch_size=64", "algo.minibatch_size=32",
       "algo.num_epochs=1", "stop.timesteps=null", "evaluation.episodes=1")


def ppo_on(num_learners: int) -> PPOConfig:
    return (PPOConfig().env_runners(num_envs_per_env_runner=4)
            .training(train_batch_size=256, minibatch_size=64, num_epochs=2).learners(num_learners=num_learners))


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(timeout=30)


@pytest.fixture(scope="module")
def undisturbed_weights(_ray_worker_path) -> Callable[[int], dict]:
    """Learners -> the weights of ppo_on(learners) after 3 iterations with no failure, each computed when first
    asked for (the 1-learner case runs only with the slow tests)."""
    connect_shared_ray()  # as `ray_cluster`, which every test using this also requests
    weights: dict[int, dict] = {}

    def of(num_learners: int) -> dict:
        if num_learners not in weights:
            algo = ppo_on(num_learners).build_algo()
            try:
                for _ in range(3):
                    algo.train()
                weights[num_learners] = algo.learner_group.get_weights()
            finally:
                algo.stop()
        return weights[num_learners]

    return of


# Rank 0 in `make test`: the harder case (the rank that holds the snapshots); the others with the slow tests.
@pytest.mark.parametrize(("num_learners", "victim"), [(2, 0), pytest.param(2, 1, marks=pytest.mark.slow),
                                                      pytest.param(1, 0, marks=pytest.mark.slow)])
def test_a_killed_learner_is_rebuilt_and_the_run_trains_as_if_undisturbed(ray_cluster, undisturbed_weights,
                                                                          num_learners: int, victim: int) -> None:
    """Rank `victim` is killed between iterations 1 and 2: iteration 2's update finds it dead, the learners are
    rebuilt (a new process group for two) from the state after update 1 (weights, Adam moments, shuffling RNG)
    and train on the same batch, so the weights after iteration 3 are those of an undisturbed run of the same
    seed."""
    algo = ppo_on(num_learners).build_algo()
    try:
        first = algo.train()
        before = learner_pids(algo)
        kill(before[victim])
        results = [algo.train() for _ in range(2)]
        after = learner_pids(algo)
        weights = algo.learner_group.get_weights()
    finally:
        algo.stop()
    assert first["fault_tolerance"]["num_learner_restarts"] == 0
    assert [r["fault_tolerance"]["num_learner_restarts"] for r in results] == [1, 1]
    assert not set(after) & set(before)  # every rank is a new process
    for key, value in undisturbed_weights(num_learners)["default_policy"].items():
        np.testing.assert_array_equal(weights["default_policy"][key], value, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("num_learners", [1, 2])
def test_asynchronous_updates_go_on_after_a_learner_died(ray_cluster, num_learners: int) -> None:
    """APPO: the updates in flight when the last rank dies are dropped, the rebuilt learners train on."""
    config = (APPOConfig().env_runners(num_env_runners=2, num_envs_per_env_runner=4, rollout_fragment_length=32)
              .learners(num_learners=num_learners))
    algo = config.build_algo()
    try:
        for _ in range(3):
            algo.train()
        kill(learner_pids(algo)[-1])
        results = [algo.train() for _ in range(10)]
    finally:
        algo.stop()
    assert results[-1]["fault_tolerance"]["num_learner_restarts"] == 1
    trained = [r["num_env_steps_trained_lifetime"] for r in results]
    assert trained == sorted(trained) and trained[-1] > trained[0]


def test_past_max_restarts_the_run_stops_in_one_line_with_its_last_good_state(run_cli, tmp_path: Path,
                                                                              monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())  # the callback comes from tests/
    result = run_cli(*RUN, "stop.iterations=5", "learners.max_restarts=0",
                     "callbacks=[user_callbacks:KillLearnerAfterIteration2]")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("rlrun: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "rlrun: error: a learner actor died after 0 restarts (learners.max_restarts=0): "), result.stderr
    assert "Traceback" not in result.stderr
    run_dir = tmp_path / "run"
    final = run_dir / "checkpoints" / "final"
    assert json.loads((final / "algorithm_state.json").read_text())["iteration"] == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["training_iteration"] for row in rows] == [1, 2]
    assert all(np.isfinite(w).all() for w in load_module_weights(final)["default_policy"].values())

"""A loss that turns non-finite: each such gradient step is skipped and counted, `learners.max_non_finite_updates`
of them in a row stop the run in one line, and no checkpoint ever holds non-finite weights.

The env (user_envs.NaNRewardEnv) is one endless episode whose reward is NaN after its first 128 steps: with one env
and 64-step batches, iterations 1 and 2 train on finite rows and every row of iteration 3 on is NaN.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pythonpath_with_tests

from rlrun.algorithms.algorithm import load_module_weights
from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.checkpointing import CheckpointError
from rlrun.core.learner.failures import NonFiniteUpdateError

# 2 epochs x 2 minibatches: 4 gradient steps per iteration.
STEPS_PER_ITERATION = 4
SETTINGS = ("env.id=user_envs:NaNRewardEnv", "env_runners.num_envs_per_runner=1", "algo.train_batch_size=64",
            "algo.minibatch_size=32", "algo.num_epochs=2", "stop.timesteps=null", "stop.iterations=10")


def nan_config(max_non_finite_updates: int) -> PPOConfig:
    return (PPOConfig().environment("user_envs:NaNRewardEnv").env_runners(num_envs_per_env_runner=1)
            .training(train_batch_size=64, minibatch_size=32, num_epochs=2)
            .fault_tolerance(max_non_finite_updates=max_non_finite_updates))


def all_finite(weights: dict) -> bool:
    return all(np.isfinite(w).all() for module in weights.values() for w in module.values())


def test_non_finite_steps_are_skipped_and_counted_then_stop_the_run_at_the_limit(tmp_path: Path) -> None:
    algo = nan_config(max_non_finite_updates=STEPS_PER_ITERATION + 2).build_algo()
    try:
        finite = [algo.train()["learners"]["default_policy"] for _ in range(2)]
        before = algo.learner_group.get_weights()
        skipped = algo.train()["learners"]["default_policy"]
        after = algo.learner_group.get_weights()
        with pytest.raises(NonFiniteUpdateError) as raised:
            algo.train()
        algo.save_to_path(tmp_path / "checkpoint")
    finally:
        algo.stop()
    assert [m["num_non_finite_updates"] for m in finite] == [0, 0]
    assert all(np.isfinite(m["policy_loss"]) and m["num_module_steps_trained"] == 128 for m in finite)
    # Iteration 3: every step skipped, so the weights did not move and the metrics say why.
    assert skipped["num_non_finite_updates"] == STEPS_PER_ITERATION
    assert np.isnan(skipped["policy_loss"]) and skipped["num_module_steps_trained"] == 0
    assert all(np.array_equal(before["default_policy"][k], w) for k, w in after["default_policy"].items())
    # Iteration 4's second step is the sixth in a row: one line naming the iteration, the module and the term.
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("iteration 4: module 'default_policy': 6 gradient steps in a row were non-finite "
                              "(policy_loss = nan; learners.max_non_finite_updates=6)")
    saved = load_module_weights(tmp_path / "checkpoint")
    assert all_finite(saved)
    assert all(np.array_equal(before["default_policy"][k], w) for k, w in saved["default_policy"].items())


def test_the_limit_counts_gradient_steps_in_a_row() -> None:
    """Every step from iteration 3 on is non-finite: a limit of one iteration's 4 steps stops at iteration 3, one
    of 5 at iteration 4's first step; the iterations before the stop are complete."""
    for limit, stop_iteration in ((STEPS_PER_ITERATION, 3), (STEPS_PER_ITERATION + 1, 4)):
        algo = nan_config(max_non_finite_updates=limit).build_algo()
        try:
            with pytest.raises(NonFiniteUpdateError, match=rf"^iteration {stop_iteration}: "):
                for _ in range(stop_iteration):
                    algo.train()
            assert algo.iteration == stop_iteration - 1
        finally:
            algo.stop()


def test_a_checkpoint_of_non_finite_weights_is_refused(tmp_path: Path) -> None:
    algo = nan_config(max_non_finite_updates=1).build_algo()
    try:
        weights = algo.learner_group.get_weights()
        weights["default_policy"][next(iter(weights["default_policy"]))][0] = np.nan
        algo.learner_group.set_weights(weights)
        with pytest.raises(CheckpointError, match=f"could not write checkpoint {tmp_path / 'checkpoint'}: weight "
                                                  "'.*' of module 'default_policy' is not finite"):
            algo.save_to_path(tmp_path / "checkpoint")
    finally:
        algo.stop()
    assert not (tmp_path / "checkpoint").exists()
    assert not list(tmp_path.iterdir())  # no temporary directory left behind


def test_cli_stops_in_one_line_with_a_final_checkpoint_of_finite_weights(run_cli, tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())  # the run imports user_envs from tests/
    result = run_cli(*SETTINGS, "learners.max_non_finite_updates=6")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("rlrun: error:")]
    assert errors == ["rlrun: error: iteration 4: module 'default_policy': 6 gradient steps in a row were "
                      "non-finite (policy_loss = nan; learners.max_non_finite_updates=6); each was skipped, so the "
                      "weights are those of the last finite step"], result.stderr
    assert "Traceback" not in result.stderr
    run_dir = tmp_path / "run"
    final = run_dir / "checkpoints" / "final"
    assert json.loads((final / "algorithm_state.json").read_text())["iteration"] == 3
    assert all_finite(load_module_weights(final))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["learners/default_policy/num_non_finite_updates"] for row in rows] == [0, 0, 4]


@pytest.mark.ray
def test_ddp_ranks_skip_the_same_steps_and_stay_identical(ray_cluster) -> None:
    """Two DDP learner actors: the ranks decide together, so both skip iteration 3's steps and keep equal weights."""
    import ray

    algo = nan_config(max_non_finite_updates=100).learners(num_learners=2).build_algo()
    try:
        for _ in range(2):
            algo.train()
        before = algo.learner_group.get_weights()
        skipped = algo.train()["learners"]["default_policy"]
        ranks = [ray.get(actor.get_state.remote("rl_module"))["rl_module"]
                 for actor in algo.learner_group._learner._actors]
    finally:
        algo.stop()
    assert skipped["num_non_finite_updates"] == STEPS_PER_ITERATION
    for weights in ranks:
        assert all(np.array_equal(before["default_policy"][k], w) for k, w in weights["default_policy"].items())

"""The plain console line: one throughput while every sampled step is trained once, sampled and trained apart
otherwise (asynchronous and replaying algorithms)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlrun.run.console import PlainDisplay


def row(iteration: int, sampled: int, trained: int) -> dict[str, float]:
    return {"training_iteration": iteration, "num_env_steps_sampled_lifetime": sampled,
            "num_env_steps_trained_lifetime": trained, "env_runners/episode_return_mean": 20.0,
            "time_total_s": 2.0 * iteration}


def printed(capsys: pytest.CaptureFixture[str], rows: list[dict[str, float]]) -> list[str]:
    display = PlainDisplay(target_steps=10_000, interval_s=0.0)
    for metrics in rows:
        display.update(metrics)
    display.finish(rows[-1], Path("run"), "done")
    return capsys.readouterr().out.splitlines()[:-1]


def test_every_step_trained_once_keeps_one_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, [row(1, 1000, 1000), row(2, 2000, 2000)])
    assert lines == ["iter=1  env steps=1,000/10,000  return=20.0  steps/s=500  eta=18s",
                     "iter=2  env steps=2,000/10,000  return=20.0  steps/s=500  eta=16s"]


def test_trained_apart_from_sampled_shows_both_for_the_rest_of_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    # Iteration 1: the first update is still running; iteration 3: the learner happens to have caught up.
    lines = printed(capsys, [row(1, 1000, 0), row(2, 2000, 1000), row(3, 3000, 3000)])
    assert lines == ["iter=1  env steps=1,000/10,000  return=20.0  sampled/s=500  trained/s=0  eta=18s",
                     "iter=2  env steps=2,000/10,000  return=20.0  sampled/s=500  trained/s=250  eta=16s",
                     "iter=3  env steps=3,000/10,000  return=20.0  sampled/s=500  trained/s=500  eta=14s"]


def test_a_run_with_several_modules_shows_each_modules_return(capsys: pytest.CaptureFixture[str]) -> None:
    multi = {**row(1, 1000, 1000), "env_runners/episode_return_mean": 50.0,
             "env_runners/module_episode_return_mean/agent_0": 30.0,
             "env_runners/module_episode_return_mean/agent_1": 20.0}
    shared = {**row(2, 2000, 2000), "env_runners/module_episode_return_mean/default_policy": 20.0}
    assert printed(capsys, [multi, shared]) == [
        "iter=1  env steps=1,000/10,000  return=50.0 (agent_0 30.0, agent_1 20.0)  steps/s=500  eta=18s",
        "iter=2  env steps=2,000/10,000  return=20.0  steps/s=500  eta=16s"]

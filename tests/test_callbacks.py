"""Callbacks (issue 26): user classes from tests/user_callbacks.py through the CLI, on two Ray env runners and
on the multi-agent runner; custom metrics in metrics.jsonl, TensorBoard, the console and rlrun-report; a
callback that stops the run; the driver hooks in order; one-line errors for entries that cannot be used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import RLRUN, pythonpath_with_tests
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from user_callbacks import HOOKS_FILE, STOP_AT_ITERATION

from rlrun.algorithms.ppo import PPOConfig
from rlrun.callbacks import Callback, MetricsLogger, check_callbacks
from rlrun.callbacks.metrics import reduce_logged
from rlrun.config.errors import ConfigError
from rlrun.env.vector_infos import copy_infos
from rlrun.report.cli import main as report_main
from rlrun.run.recorder import RunRecorder, read_metrics

TINY = ("algo.train_batch_size=128", "algo.minibatch_size=64", "algo.num_epochs=1",
        "env_runners.num_envs_per_runner=4", "evaluation.episodes=2")
CALLBACKS = "callbacks=[user_callbacks:SuccessRate,user_callbacks:StopAfterIterations,user_callbacks:HookLog]"
# The CLI checks share one run (stopped_run): one worker builds it once.
pytestmark = pytest.mark.xdist_group("callbacks")


def rlrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath_with_tests()}
    run_dir = () if any(a.startswith("resume=") for a in args) else (f"hydra.run.dir={cwd / 'run'}",)
    return subprocess.run([RLRUN, *args, *run_dir, "logger.console=plain"],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One CLI run for the CLI checks: a metric from infos, a driver metric, a stop by callback, the hook log."""
    cwd = tmp_path_factory.mktemp("callbacks")
    proc = rlrun("env.id=user_callbacks:InfoCorridor", *TINY, "stop.iterations=50", "checkpoint.every_iterations=2",
                 CALLBACKS, "logger.console_metrics=[env_runners/success]", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc, cwd / "run"


def test_a_callback_stops_the_run_cleanly_with_a_final_evaluation_and_checkpoint(stopped_run) -> None:
    proc, run_dir = stopped_run
    reason = f"StopAfterIterations: {STOP_AT_ITERATION} iterations are enough"
    assert f"done ({reason})" in proc.stdout and f"finished ({reason})" in (run_dir / "rlrun.log").read_text()
    rows = read_metrics(run_dir)
    assert [r["training_iteration"] for r in rows] == list(range(1, STOP_AT_ITERATION + 1))
    assert "evaluation/episode_return_mean" in rows[-1]  # the run's final evaluation, in the stopping row
    # The evaluation runner's hooks log too. Greedy episodes of the deterministic corridor are all alike, so
    # every one the evaluation played has the evaluated return as its success.
    assert rows[-1]["evaluation/success"] == rows[-1]["evaluation/episode_return_mean"]
    assert (run_dir / "checkpoints" / "final" / "algorithm_state.json").is_file()


def test_metrics_from_infos_and_hooks_reach_metrics_jsonl(stopped_run) -> None:
    rows = read_metrics(stopped_run[1])
    for row in rows:
        # The step hook fires once per env step sampled (autoreset rows are not steps).
        assert row["env_runners/steps"] == row["env_runners/num_env_steps_sampled"]
        assert 0.0 <= row["env_runners/success"] <= 1.0
        assert row["driver/iteration_squared"] == row["training_iteration"] ** 2
    # The corridor pays 1 exactly when it reaches the goal: in the first iteration (the return window holds
    # just its episodes) the success rate from the infos is the mean return.
    assert rows[0]["env_runners/success"] == pytest.approx(rows[0]["env_runners/episode_return_mean"])
    assert any(row["env_runners/position_max"] == 4.0 for row in rows)  # the goal cell of a corridor of 5


def test_custom_metrics_reach_tensorboard_the_console_and_rlrun_report(stopped_run, tmp_path, capsys) -> None:
    proc, run_dir = stopped_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"env_runners/success", "env_runners/position_max", "driver/iteration_squared"} <= set(tags)
    last = read_metrics(run_dir)[-1]
    assert events.Scalars("env_runners/success")[-1].value == pytest.approx(last["env_runners/success"])
    assert f"success={last['env_runners/success']:.4g}" in proc.stdout  # logger.console_metrics

    report_main([str(run_dir), "--out", str(tmp_path)])  # the run's console_metrics are its default metrics
    report = (tmp_path / "report.md").read_text()
    assert "## Metrics" in report and f"| env_runners/success | {last['env_runners/success']:.2f}" in report
    assert "env_runners/success" in capsys.readouterr().out


def test_driver_hooks_are_called_in_order(stopped_run) -> None:
    run_dir = stopped_run[1]
    calls = [json.loads(line) for line in (run_dir / HOOKS_FILE).read_text().splitlines()]
    assert [c["hook"] for c in calls] == ["on_algorithm_init", "on_checkpoint_saved", "on_evaluate_end",
                                          "on_checkpoint_saved", "on_checkpoint_saved", "on_run_end"]
    assert calls[0]["iteration"] == 0
    saved = [(c["iteration"], Path(c["path"]).name, c["complete"]) for c in calls if c["hook"] == "on_checkpoint_saved"]
    assert saved == [(2, "checkpoint_000002", True), (3, "best", True), (3, "final", True)]
    evaluation = next(c for c in calls if c["hook"] == "on_evaluate_end")
    assert evaluation["episode_return_mean"] == read_metrics(run_dir)[-1]["evaluation/episode_return_mean"]
    assert calls[-1]["error"] is None


def test_a_resumed_run_calls_its_callbacks_afresh(stopped_run, tmp_path) -> None:
    """Callbacks are not state: a copy of the stopped run, resumed, builds them again from the config."""
    run_dir = shutil.copytree(stopped_run[1], tmp_path / "run")
    proc = rlrun(f"resume={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"done (StopAfterIterations: {STOP_AT_ITERATION} iterations are enough)" in proc.stdout
    rows = read_metrics(run_dir)
    assert rows[-1]["training_iteration"] == STOP_AT_ITERATION + 1
    assert rows[-1]["env_runners/steps"] == rows[-1]["env_runners/num_env_steps_sampled"]
    calls = [json.loads(line) for line in (run_dir / HOOKS_FILE).read_text().splitlines()]
    resumed = calls[[c["hook"] for c in calls].index("on_run_end") + 1:]
    assert resumed[0] == {"hook": "on_algorithm_init", "iteration": STOP_AT_ITERATION}
    assert resumed[-1]["hook"] == "on_run_end"


def test_custom_metrics_reduce_over_every_value_of_two_remote_env_runners(ray_cluster) -> None:
    algo = (PPOConfig().environment("user_callbacks:InfoCorridor")
            .env_runners(num_env_runners=2, num_envs_per_env_runner=4)
            .training(train_batch_size=256, minibatch_size=128, num_epochs=1)
            .callbacks(["user_callbacks:WorkerMix"]).build_algo())
    try:
        for _ in range(2):
            runners = algo.train()["env_runners"]
            n1, n2 = runners["episodes_of_1"], runners["episodes_of_2"]
            assert n1 > 0 and n2 > 0
            assert runners["episodes"] == n1 + n2 == runners["num_episodes"]  # sum
            assert (runners["worker_min"], runners["worker_max"]) == (1.0, 2.0)
            # The mean of every episode's value, not the mean of the two runners' means (1.5).
            assert runners["worker_mean"] == pytest.approx((n1 + 2 * n2) / (n1 + n2))
    finally:
        algo.stop()


def test_episode_hooks_on_the_multi_agent_runner() -> None:
    algo = (PPOConfig().environment("rlrun.env.multi_agent.multi_cartpole:MultiCartPole",
                                    env_config={"num_agents": 2, "max_steps": 20})
            .env_runners(num_envs_per_env_runner=2)
            .training(train_batch_size=200, minibatch_size=100, num_epochs=1)
            .callbacks(["user_callbacks:EpisodeCounter"]).build_algo())
    try:
        runner = algo.env_runner_group._local
        batch = runner.sample()
        metrics = runner.get_metrics()
        logged = reduce_logged(metrics["callback_metrics"])
        assert logged["steps"] == batch.env_steps
        assert logged["ends"] == len(metrics["episode_returns"]) > 0
        assert logged["starts"] >= runner.num_envs and logged["start_len_max"] == 0
        assert logged["end_return"] == pytest.approx(np.mean(metrics["episode_returns"]))
    finally:
        algo.stop()


def test_metrics_logger_reductions_and_misuse() -> None:
    logger = MetricsLogger()
    for value in (3, 1, 2):
        for reduce in ("mean", "min", "max", "sum"):
            logger.log_value(reduce, value, reduce=reduce)
    assert logger.reduce() == {"mean": 2.0, "min": 1.0, "max": 3.0, "sum": 6.0}
    other = MetricsLogger()
    other.log_value("mean", 10.0)
    # Two runners' reports: the mean weighs every value, not each runner's mean.
    assert reduce_logged({"mean": logger.pop()["mean"] + other.pop()["mean"]}) == {"mean": 4.0}
    assert logger.pop() == {}
    with pytest.raises(ValueError, match="reduce must be one of"):
        logger.log_value("x", 1.0, reduce="median")
    logger.log_value("x", 1.0)
    with pytest.raises(ValueError, match="logged with reduce='mean' before, now 'sum'"):
        logger.log_value("x", 1.0, reduce="sum")


def test_copy_infos_takes_one_copys_keys_from_batched_infos() -> None:
    infos = {"success": np.array([True, False]), "_success": np.array([True, True]),
             "position": np.array([4, 0]), "_position": np.array([True, False]),
             "episode": {"r": np.array([1.0, 0.0]), "_r": np.array([False, True])}, "_episode": np.array([True, True])}
    assert copy_infos(infos, 0) == {"success": True, "position": 4, "episode": {}}
    assert copy_infos(infos, 1) == {"success": False, "episode": {"r": 0.0}}


@pytest.mark.parametrize(("entry", "message"), [
    ("user_callbacks", "callbacks must look like pkg.module:ClassName"),
    ("no_such_module:Cb", "callbacks 'no_such_module:Cb' cannot be imported"),
    ("user_callbacks:NotACallback", "is not a Callback subclass"),
    ("user_callbacks:PositionalEpisodeEnd", "PositionalEpisodeEnd.on_episode_end cannot take rlrun's keyword "
     "arguments"),
])
def test_an_unusable_entry_is_a_config_error(entry: str, message: str) -> None:
    """Raised by `AlgorithmConfig.validate`, before anything starts: the CLI prints a ConfigError as its one line
    `rlrun: error: ...` (tests/test_cli_errors.py)."""
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")) as error:
        PPOConfig().callbacks([entry]).validate()
    assert "\n" not in str(error.value)


def test_a_hook_signature_error_says_how_to_define_the_hook() -> None:
    with pytest.raises(ConfigError) as error:
        check_callbacks(["user_callbacks:PositionalEpisodeEnd"])
    assert str(error.value) == (
        "callbacks: user_callbacks:PositionalEpisodeEnd.on_episode_end cannot take rlrun's keyword arguments (got "
        "an unexpected keyword argument 'env_runner'); define it as on_episode_end(self, *, episode, env_runner, "
        "metrics_logger, **kwargs)")


class _Stop(Callback):
    def on_train_result(self, *, metrics_logger, **kwargs):
        metrics_logger.log_value("added", 1.0)
        return True


class _Rows(Callback):
    """A record after the user's callbacks, as TensorBoard and the trackers are."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_train_result(self, *, result, **kwargs) -> None:
        self.rows.append(dict(result))


class _ReturnsResult(Callback):
    def on_train_result(self, *, result, **kwargs):
        return result


def test_recorder_order_stop_reason_and_final_evaluation(tmp_path) -> None:
    """The records after a stopping callback get its metric and the final evaluation; so does metrics.jsonl."""
    rows = _Rows()
    recorder = RunRecorder(tmp_path, callbacks=[_Stop(), rows])
    evaluations = []

    def final_evaluation() -> dict:
        evaluations.append(1)
        return {"evaluation/episode_return_mean": 5.0}

    row, stop = recorder.record(None, {"training_iteration": 1}, final_evaluation)
    recorder.close()
    assert stop == "_Stop: asked to stop" and evaluations == [1]
    assert rows.rows[0]["added"] == 1.0 and rows.rows[0]["evaluation/episode_return_mean"] == 5.0
    assert read_metrics(tmp_path) == [row]

    (tmp_path / "second").mkdir()
    recorder = RunRecorder(tmp_path / "second", callbacks=[_ReturnsResult()])
    with pytest.raises(TypeError, match="returned a dict; return a reason"):
        recorder.record(None, {"training_iteration": 1}, dict)
    recorder.close()

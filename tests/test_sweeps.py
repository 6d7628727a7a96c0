"""Sweeps through the real `rlrun -m` CLI: the basic launcher, the parallel launcher, an Optuna study, failed jobs.

Every job is a tiny run (one PPO iteration on a 64-step batch); what is checked is what a user
relies on: one complete run directory per job, where it lands, that the parallel launcher really
overlaps jobs, that Optuna gets each run's objective, that a failed job is reported and costs
nothing else, and that a mistake in the sweep command itself stops it before any job starts.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RLRUN, pythonpath_with_tests

from rlrun.cli import EXIT_JOBS_FAILED, EXIT_USAGE
from rlrun.run.recorder import read_metrics

TINY = ("algo.train_batch_size=64", "algo.minibatch_size=32", "evaluation.episodes=2",
        "stop.iterations=1", "logger.console=none")
OBJECTIVE_LINE = re.compile(r"objective for sweepers: (\S+)")


def rlrun(*args: str, cwd: Path, sweep_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`rlrun <args>` in a subprocess run from cwd (tests/ on its PYTHONPATH); a sweep lands in sweep_dir."""
    cmd = [RLRUN, *args, *([f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else [])]
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONPATH": pythonpath_with_tests()}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd, env=env)


def job_config(job_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())


def assert_complete_run_dir(job_dir: Path) -> None:
    assert [r["training_iteration"] for r in read_metrics(job_dir)] == [1]
    # (no learning_curve.png: one 64-step iteration may finish no episode to plot)
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/final/algorithm_state.json", "rlrun.log"):
        assert (job_dir / name).is_file(), f"{job_dir / name} missing"
    assert not (job_dir / "error.txt").exists()


def job_dirs(sweep_dir: Path) -> list[str]:
    return sorted((p.name for p in sweep_dir.iterdir() if p.is_dir()), key=int)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("rlrun: error:")]


def test_basic_sweep_lands_in_multirun_date_time_job(tmp_path: Path) -> None:
    """No hydra.sweep.dir: jobs go to multirun/<date>/<time>/<job number> under the working directory."""
    proc = rlrun("-m", "seed=0,1", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    sweep_dirs = list((tmp_path / "multirun").glob("*/*"))
    assert len(sweep_dirs) == 1, sweep_dirs
    sweep_dir = sweep_dirs[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sweep_dir.parent.name), sweep_dir
    assert re.fullmatch(r"\d{2}-\d{2}-\d{2}", sweep_dir.name), sweep_dir
    assert job_dirs(sweep_dir) == ["0", "1"]
    for seed, job in enumerate(job_dirs(sweep_dir)):
        assert_complete_run_dir(sweep_dir / job)
        assert job_config(sweep_dir / job)["seed"] == seed
    assert not (tmp_path / "outputs").exists()


def test_parallel_launcher_runs_jobs_concurrently(tmp_path: Path) -> None:
    """Each job's env (user_envs.BarrierEnv) waits for the other job's: both finish only if they overlap."""
    sweep_dir, barrier = tmp_path / "sweep", tmp_path / "barrier"
    barrier.mkdir()
    proc = rlrun("-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1", *TINY,
                 "env.id=user_envs:BarrierEnv", f"+env.env_config.barrier_dir={barrier}", "+env.env_config.parties=2",
                 cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout

    assert job_dirs(sweep_dir) == ["0", "1"]
    for seed, job in enumerate(job_dirs(sweep_dir)):
        assert_complete_run_dir(sweep_dir / job)
        assert job_config(sweep_dir / job)["seed"] == seed
    assert len(list(barrier.iterdir())) == 2, "the jobs did not run in two worker processes"


def test_optuna_study_gets_each_runs_objective_and_survives_a_failed_trial(tmp_path: Path) -> None:
    """Trials that sample num_epochs=0 fail; the others complete, each objective is its final evaluation return.

    The preset sets hydra.mode=MULTIRUN, so no -m is needed; best_value is the best completed trial's objective.
    """
    sweep_dir = tmp_path / "study"
    proc = rlrun("hparams_search=ppo_cartpole_optuna", "hydra.sweeper.n_trials=3", *TINY,
                 "algo.num_epochs=choice(0, 1)", cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == EXIT_JOBS_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr

    assert job_dirs(sweep_dir) == ["0", "1", "2"]
    failed = [job for job in job_dirs(sweep_dir) if (sweep_dir / job / "error.txt").exists()]
    completed = [job for job in job_dirs(sweep_dir) if job not in failed]
    # The sampler is seeded (TPE, seed 0): these trials are the same on every run (trial 1 fails, 0 and 2 complete).
    assert failed and len(completed) >= 2, f"failed trials {failed}: the study no longer mixes good and bad trials"
    assert [line.split(" (")[0] for line in error_lines(proc)] == [f"rlrun: error: job {job}" for job in failed]
    for line in error_lines(proc):
        assert "algo.num_epochs=0 " in line and line.endswith("failed: algo.num_epochs must be >= 1 (got 0)"), line
    for job in failed:
        assert (sweep_dir / job / "error.txt").read_text() == "algo.num_epochs must be >= 1 (got 0)\n"

    objectives, params = {}, {}
    for job in completed:
        assert_complete_run_dir(sweep_dir / job)
        config = job_config(sweep_dir / job)
        assert config["env_runners"]["num_envs_per_runner"] == 16  # built on experiment=cartpole_ppo_fast
        assert 1e-4 <= config["algo"]["lr"] <= 1e-2 and 0.95 <= config["algo"]["gamma"] <= 0.999
        params[job] = {f"algo.{key}": config["algo"][key]
                       for key in ("lr", "gamma", "lambda_", "entropy_coeff", "num_epochs")}
        objectives[job] = float(OBJECTIVE_LINE.search((sweep_dir / job / "rlrun.log").read_text()).group(1))
        assert objectives[job] == read_metrics(sweep_dir / job)[-1]["evaluation/episode_return_mean"]
    assert len({p["algo.lr"] for p in params.values()}) == len(completed), "the sampler proposed the same lr twice"

    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = max(completed, key=objectives.__getitem__)
    assert results["best_value"] == objectives[best]
    assert results["best_params"] == pytest.approx(params[best])


@pytest.mark.parametrize("launcher", ["basic", "parallel"])
def test_failed_job_is_reported_and_the_others_complete(tmp_path: Path, launcher: str) -> None:
    """Job 0 has an invalid lr: job 1 still runs, stderr names job 0 and its error on one line, exit 1."""
    sweep_dir = tmp_path / "sweep"
    proc = rlrun("-m", f"hydra/launcher={launcher}", "algo.lr=-1,0.001", *TINY, cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == EXIT_JOBS_FAILED, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr

    job_0 = " ".join(("algo.lr=-1", *TINY))
    assert error_lines(proc) == [f"rlrun: error: job 0 ({job_0}) failed: algo.lr must be > 0 (got -1.0)"], proc.stderr
    assert (sweep_dir / "0" / "error.txt").read_text() == "algo.lr must be > 0 (got -1.0)\n"
    assert_complete_run_dir(sweep_dir / "1")
    assert job_config(sweep_dir / "1")["algo"]["lr"] == 0.001


def test_study_whose_trials_all_fail_lists_them(tmp_path: Path) -> None:
    """Optuna gives up without a completed trial ("No trials are completed yet"); rlrun shows why instead."""
    sweep_dir = tmp_path / "study"
    proc = rlrun("-m", "hparams_search=ppo_cartpole_optuna", "hydra.sweeper.n_trials=2", *TINY, "algo.num_epochs=0",
                 cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == EXIT_JOBS_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    failures = error_lines(proc)
    assert [line.split(" (")[0] for line in failures] == ["rlrun: error: job 0", "rlrun: error: job 1"]
    assert all(line.endswith("failed: algo.num_epochs must be >= 1 (got 0)") for line in failures), failures


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("not_a_key=1", ["not_a_key"]),
        ("algo.lr=0.001,abc", ["algo.lr=abc", "Float"]),  # the bad value is a later job's, not the first's
    ],
    ids=["unknown-key", "wrong-type"],
)
def test_bad_sweep_command_is_rejected_before_any_job(tmp_path: Path, override: str, expected: list[str]) -> None:
    """One line, status 2, and no job ran: the sweep leaves no directory behind."""
    proc = rlrun("-m", "seed=0,1", override, *TINY, cwd=tmp_path, sweep_dir=tmp_path / "sweep")
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun: error: "), proc.stderr
    for text in expected:
        assert text in lines[0]
    assert "launching" not in proc.stdout.lower(), proc.stdout
    assert list(tmp_path.iterdir()) == [], "a rejected sweep left files behind"

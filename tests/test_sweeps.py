"""Sweeps through the real `rlrun -m` CLI: the basic launcher, the parallel launcher, an Optuna study, failed jobs.

Every job is a tiny run (two or three PPO iterations); what is checked is what a user relies on:
one complete run directory per job, where it lands, that the parallel launcher really overlaps
jobs, that Optuna gets each run's objective, and that a failed job is reported and costs nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RLRUN

from rlrun.cli import EXIT_JOBS_FAILED

TINY = ("stop.iterations=2", "logger.console=none")
OBJECTIVE_LINE = re.compile(r"objective for sweepers: (\S+)")


def rlrun(*args: str, cwd: Path, sweep_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`rlrun <args>` in a subprocess run from cwd; a sweep lands in sweep_dir unless it is None."""
    cmd = [RLRUN, *args, *([f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else [])]
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd, env=env)


def metrics(job_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job_dir / "metrics.jsonl").read_text().splitlines()]


def job_config(job_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())


def assert_complete_run_dir(job_dir: Path, iterations: int = 2) -> None:
    assert [r["training_iteration"] for r in metrics(job_dir)] == list(range(1, iterations + 1))
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/final/algorithm_state.json",
                 "learning_curve.png", "rlrun.log"):
        assert (job_dir / name).is_file(), f"{job_dir / name} missing"
    assert not (job_dir / "error.txt").exists()


def job_dirs(sweep_dir: Path) -> list[str]:
    return sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())


def test_basic_sweep_lands_in_multirun_date_time_job(tmp_path: Path) -> None:
    """No hydra.sweep.dir: jobs go to multirun/<date>/<time>/<job number> under the working directory."""
    proc = rlrun("-m", "seed=0,1,2", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    sweep_dirs = list((tmp_path / "multirun").glob("*/*"))
    assert len(sweep_dirs) == 1, sweep_dirs
    sweep_dir = sweep_dirs[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", sweep_dir.parent.name), sweep_dir
    assert re.fullmatch(r"\d{2}-\d{2}-\d{2}", sweep_dir.name), sweep_dir
    assert job_dirs(sweep_dir) == ["0", "1", "2"]
    for seed, job in enumerate(job_dirs(sweep_dir)):
        assert_complete_run_dir(sweep_dir / job)
        assert job_config(sweep_dir / job)["seed"] == seed
    assert not (tmp_path / "outputs").exists()


def test_parallel_launcher_runs_jobs_concurrently(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = rlrun("-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=0,1", "stop.iterations=3",
                          "logger.console=none", cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout

    assert job_dirs(sweep_dir) == ["0", "1"]
    spans = []
    for seed, job in enumerate(job_dirs(sweep_dir)):
        assert_complete_run_dir(sweep_dir / job, iterations=3)
        assert job_config(sweep_dir / job)["seed"] == seed
        rows = metrics(sweep_dir / job)
        # Training started time_total_s before the first row's stamp and ended at the last row's.
        spans.append((rows[0]["timestamp"] - rows[0]["time_total_s"], rows[-1]["timestamp"]))
    (start0, end0), (start1, end1) = spans
    assert max(start0, start1) < min(end0, end1), f"jobs did not overlap: {spans}"


def test_optuna_study_gets_each_runs_objective(tmp_path: Path) -> None:
    """The preset sets hydra.mode=MULTIRUN, so no -m is needed; best_value is the best trial's objective."""
    sweep_dir = tmp_path / "study"
    proc = rlrun("hparams_search=ppo_cartpole_optuna", "hydra.sweeper.n_trials=3", *TINY,
                          cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == 0, proc.stderr

    assert job_dirs(sweep_dir) == ["0", "1", "2"]
    objectives, params = [], []
    for job in job_dirs(sweep_dir):
        assert_complete_run_dir(sweep_dir / job)
        config = job_config(sweep_dir / job)
        assert config["env_runners"]["num_envs_per_runner"] == 16  # built on experiment=cartpole_ppo_fast
        assert 1e-4 <= config["algo"]["lr"] <= 1e-2 and 0.95 <= config["algo"]["gamma"] <= 0.999
        params.append({f"algo.{key}": config["algo"][key] for key in ("lr", "gamma", "lambda_", "entropy_coeff")})
        objectives.append(float(OBJECTIVE_LINE.search((sweep_dir / job / "rlrun.log").read_text()).group(1)))
    assert len({p["algo.lr"] for p in params}) == 3, "the sampler proposed the same lr twice"

    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = max(range(3), key=objectives.__getitem__)
    assert results["best_value"] == objectives[best]
    assert results["best_params"] == pytest.approx(params[best])


@pytest.mark.parametrize("launcher", ["basic", "parallel"])
def test_failed_job_is_reported_and_the_others_complete(tmp_path: Path, launcher: str) -> None:
    """Job 0 has an invalid lr: job 1 still runs, stderr names job 0 and its error on one line, exit 1."""
    sweep_dir = tmp_path / "sweep"
    proc = rlrun("-m", f"hydra/launcher={launcher}", "algo.lr=-1,0.001", *TINY, cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == EXIT_JOBS_FAILED, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr

    failures = [line for line in proc.stderr.splitlines() if line.startswith("rlrun: error:")]
    assert failures == [
        "rlrun: error: job 0 (algo.lr=-1 stop.iterations=2 logger.console=none) failed: algo.lr must be > 0 (got -1.0)"
    ], proc.stderr
    assert (sweep_dir / "0" / "error.txt").read_text() == "algo.lr must be > 0 (got -1.0)\n"
    assert_complete_run_dir(sweep_dir / "1")
    assert job_config(sweep_dir / "1")["algo"]["lr"] == 0.001


def test_study_whose_trials_all_fail_lists_them(tmp_path: Path) -> None:
    """Optuna gives up without a completed trial ("No trials are completed yet"); rlrun shows why instead."""
    sweep_dir = tmp_path / "study"
    proc = rlrun("-m", "hparams_search=ppo_cartpole_optuna", "hydra.sweeper.n_trials=2", "algo.num_epochs=0",
                          *TINY, cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == EXIT_JOBS_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    failures = [line for line in proc.stderr.splitlines() if line.startswith("rlrun: error:")]
    assert [line.split(" (")[0] for line in failures] == ["rlrun: error: job 0", "rlrun: error: job 1"]
    assert all(line.endswith("failed: algo.num_epochs must be >= 1 (got 0)") for line in failures), failures

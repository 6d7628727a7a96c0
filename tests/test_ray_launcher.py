"""`hydra/launcher=ray` through the real CLI: jobs as Ray tasks on a local instance or a `ray start` cluster.

What a user relies on: jobs really run at the same time, each leaves the run directory the basic
launcher would, a failed job is reported without stopping the others, the jobs' actors live on
the sweep's cluster (no second Ray), Ctrl-C leaves every job's final checkpoint, a job too big
for the cluster is refused before anything runs, and no Ray process outlives the sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import RLRUN, pythonpath_with_tests
from ray_head import driver_env, ray_head, reconnect
from test_ray_cli import assert_all_gone, interruptible, process_tree

from rlrun.cli import EXIT_JOBS_FAILED, EXIT_USAGE
from rlrun.run.recorder import read_metrics

pytestmark = pytest.mark.ray
TINY = ("algo.train_batch_size=64", "algo.minibatch_size=32", "env_runners.num_envs_per_runner=1",
        "evaluation.episodes=2", "logger.console=none", "logger.tensorboard=false")
RAY_SERVICES = {"gcs_server", "raylet"}


def cli_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """tests/ on PYTHONPATH (a local instance's workers inherit it and import `user_envs`); no debug mode."""
    env = {k: v for k, v in (base or os.environ).items() if k != "RLRUN_DEBUG"}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath_with_tests()}


def start_sweep(args: list[str], sweep_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([RLRUN, "-m", "hydra/launcher=ray", *args, f"hydra.sweep.dir={sweep_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sweep_dir.parent,
                            env=env or cli_env(), preexec_fn=interruptible)


def run_watched(proc: subprocess.Popen, timeout: float = 300) -> tuple[str, str, list[psutil.Process], set[str]]:
    """Wait for the sweep; returns its stdout, stderr, and every process (and process name) seen in its tree."""
    seen: dict[int, psutil.Process] = {}
    names: set[str] = set()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in process_tree(proc.pid):
                seen[p.pid] = p
                names.add(p.name())
        time.sleep(0.1)
    out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    return out, err, list(seen.values()), names


def assert_complete_run_dir(job_dir: Path, iterations: int) -> None:
    assert [r["training_iteration"] for r in read_metrics(job_dir)] == list(range(1, iterations + 1))
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/final/algorithm_state.json", "rlrun.log"):
        assert (job_dir / name).is_file(), f"{job_dir / name} missing"
    assert "objective for sweepers: " in (job_dir / "rlrun.log").read_text()
    assert not (job_dir / "error.txt").exists()


def iterations(job_dir: Path) -> int:
    return len(read_metrics(job_dir)) if (job_dir / "metrics.jsonl").exists() else 0


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("rlrun: error:")]


@pytest.mark.own_ray
def test_jobs_run_at_once_on_a_local_instance(tmp_path: Path) -> None:
    """Each job's env (user_envs.BarrierEnv) waits for the other's: the sweep ends only if both jobs overlap."""
    sweep_dir, barrier = tmp_path / "sweep", tmp_path / "barrier"
    barrier.mkdir()
    proc = start_sweep(["ray.num_cpus=4", "seed=0,1", "stop.iterations=2", *TINY, "env.id=user_envs:BarrierEnv",
                        f"+env.env_config.barrier_dir={barrier}", "+env.env_config.parties=2"], sweep_dir)
    out, err, tree, names = run_watched(proc)
    assert proc.returncode == 0, err
    assert "Ray launcher: 2 jobs on 127.0.0.1:" in out and "(4 CPUs, 0 GPUs)" in out, out

    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    spans = []
    for job in range(2):
        job_dir = sweep_dir / str(job)
        assert_complete_run_dir(job_dir, iterations=2)
        # From Hydra writing the job's config to the job's last iteration: every span contains the barrier's moment.
        spans.append(((job_dir / ".hydra" / "config.yaml").stat().st_mtime, read_metrics(job_dir)[-1]["timestamp"]))
    assert max(start for start, _ in spans) < min(end for _, end in spans), f"the jobs did not overlap: {spans}"
    assert len(list(barrier.iterdir())) == 2, "the jobs did not run in 2 processes"

    assert names >= RAY_SERVICES, f"no local Ray instance in the sweep's process tree: {names}"
    assert_all_gone(tree)


@pytest.mark.slow  # ~40 s: `ray start`, a sweep and a refused sweep on it
def test_jobs_join_a_ray_start_cluster_and_a_failed_job_is_reported(tmp_path: Path) -> None:
    """Job 1's env runner is an actor of the joined cluster; job 0 (bad lr) fails alone; the cluster stays up."""
    with ray_head(num_cpus=4) as head:
        env = cli_env(driver_env())
        sweep_dir = tmp_path / "sweep"
        proc = start_sweep([f"ray.address={head.address}", "algo.lr=-1,0.001", "env_runners.num=1",
                            "stop.iterations=1", *TINY], sweep_dir, env)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == EXIT_JOBS_FAILED, err
        assert "Traceback" not in err, err
        [line] = error_lines(err)
        assert line.startswith("rlrun: error: job 0 (") and line.endswith("failed: algo.lr must be > 0 (got -1.0)")
        assert (sweep_dir / "0" / "error.txt").read_text() == "algo.lr must be > 0 (got -1.0)\n"
        assert_complete_run_dir(sweep_dir / "1", iterations=1)
        log = (sweep_dir / "1" / "rlrun.log").read_text()
        assert f":{head.port} (4 CPUs, 0 GPUs): 1 env runner x 1 envs" in log, "the job did not use the joined cluster"
        assert "Ray cluster" in log and "Ray local instance" not in log

        refused_dir = tmp_path / "refused"
        proc = start_sweep([f"ray.address={head.address}", "seed=0,1", "env_runners.num=64", *TINY], refused_dir, env)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_USAGE, err
        assert err.splitlines() == error_lines(err) and len(error_lines(err)) == 1, err
        assert "job 0 (" in err and "needs 65 CPUs" in err and f":{head.port} has 4;" in err, err
        assert not refused_dir.exists()
        assert reconnect(head) == 4, "a job or the launcher stopped the cluster it joined"


@pytest.mark.own_ray
def test_a_job_too_big_for_the_cluster_is_refused_before_anything_runs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(["ray.num_cpus=4", "seed=0,1", "env_runners.num=64", *TINY], sweep_dir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_USAGE, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rlrun: error: hydra/launcher=ray: job 0 (ray.num_cpus=4 seed=0 env_runners.num=64 "), err
    assert "needs 65 CPUs (1 for its driver task + env_runners.num=64 x " in err and "has 4" in err, err
    assert list(tmp_path.iterdir()) == [], "a refused sweep left files behind"


@pytest.mark.slow  # ~30 s: two jobs started, then interrupted
def test_ctrl_c_stops_every_job_and_each_leaves_its_final_checkpoint(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(["ray.num_cpus=2", "seed=0,1", "stop.timesteps=100000000", *TINY], sweep_dir)
    deadline = time.monotonic() + 240
    while min(iterations(sweep_dir / job) for job in ("0", "1")) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the jobs made no progress"
        time.sleep(0.2)
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    for job in ("0", "1"):
        state = json.loads((sweep_dir / job / "checkpoints" / "final" / "algorithm_state.json").read_text())
        trained = len(read_metrics(sweep_dir / job))
        assert state["iteration"] >= trained >= 2, (job, state["iteration"], trained)
    assert_all_gone(tree)

"""The `rlrun` CLI in Ray mode: a real local cluster, a real joined cluster, clean shutdown on every exit path."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import torch
from conftest import RLRUN, pythonpath_with_tests

pytestmark = pytest.mark.ray
RETURN_KEY = "env_runners/episode_return_mean"


def cli_env() -> dict[str, str]:
    # Env runner actors import `user_envs` from tests/; Ray's workers inherit PYTHONPATH.
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath_with_tests()}


def start(args: list[str], run_dir: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [RLRUN, *args, f"hydra.run.dir={run_dir}", "logger.console=plain"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=env or cli_env())


def rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"rlrun exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("rlrun made no progress")
        time.sleep(0.2)


def process_tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def assert_all_gone(processes: list[psutil.Process]) -> None:
    """Every process the run started (Ray's GCS, raylet, workers, actors) has exited."""
    assert processes, "the run started no processes: the tree snapshot proves nothing"
    _, alive = psutil.wait_procs(processes, timeout=20)
    assert not alive, f"orphaned processes: {[(p.pid, p.cmdline()[:2]) for p in alive]}"


def run_with_a_crash(args: list[str], after_iterations: int, tmp_path: Path) -> tuple[subprocess.Popen, str, str, list]:
    """Run rlrun on CrashOnceEnv; once `after_iterations` are recorded, make one env runner's env raise.

    Returns the finished process, its stdout and stderr, and the process tree
    snapshotted while it ran (to check that none of it outlives the run).
    """
    run_dir, crash = tmp_path / "run", tmp_path / "crash"
    proc = start([*args, "env.id=user_envs:CrashOnceEnv", f"+env.env_config.crash_file={crash}"], run_dir, tmp_path)
    wait_for(lambda: len(rows(run_dir)) >= after_iterations, proc)
    tree = process_tree(proc.pid)
    crash.touch()
    out, err = proc.communicate(timeout=400)
    assert not crash.exists(), "the env never crashed"
    return proc, out, err, tree


def test_ray_mode_solves_cartpole_through_a_crashing_runner(tmp_path: Path) -> None:
    """2 EnvRunner actors + 2 DDP learners reach the return threshold although one runner's env crashes mid-run."""
    run_dir = tmp_path / "run"
    # The preset's 16 envs, split over 2 runners: the same samples per iteration as in embedded mode.
    proc, out, err, tree = run_with_a_crash(["experiment=cartpole_ppo_fast", "env_runners.num=2",
                                             "env_runners.num_envs_per_runner=8", "learners.num=2",
                                             "stop.return_mean=300"], 3, tmp_path)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "2 env runners x 8 envs" in out and "2 DDP learners (cpu, gloo)" in out
    metrics = rows(run_dir)
    assert metrics[-1][RETURN_KEY] >= 300
    assert metrics[-1]["fault_tolerance/num_remote_worker_restarts"] == 1
    healthy = [r["env_runners/num_healthy_env_runners"] for r in metrics]
    assert 1 in healthy and healthy[-1] == 2
    for key in ("timers/env_runner_sampling_timer", "timers/learner_update_timer", "timers/synch_weights",
                "num_env_steps_sampled_lifetime_throughput"):
        assert key in metrics[-1], key
    assert (run_dir / "checkpoints" / "final" / "learner_group" / "module_default_policy.safetensors").is_file()
    assert_all_gone(tree)


def test_ctrl_c_writes_final_checkpoint_and_stops_ray(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(["env_runners.num=1", "learners.num=2", "stop.timesteps=100000000"], run_dir, tmp_path)
    wait_for(lambda: len(rows(run_dir)) >= 2, proc)
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    state = json.loads((run_dir / "checkpoints" / "final" / "algorithm_state.json").read_text())
    assert state["iteration"] >= 2
    assert_all_gone(tree)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_joins_an_existing_cluster_and_leaves_it_running(tmp_path: Path) -> None:
    port = free_port()
    # The cluster uses Ray's token authentication; a driver joining it must opt in to send the token.
    env = {**cli_env(), "RAY_AUTH_MODE": "token"}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=3",
         "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
         f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
         "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )
    try:
        run_dir = tmp_path / "run"
        proc = start([f"ray.address=127.0.0.1:{port}", "env_runners.num=1", "learners.num=2", "stop.iterations=3"],
                     run_dir, tmp_path, env)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert f":{port} (3 CPUs, 0 GPUs): 1 env runner x 8 envs" in out
        assert [r["training_iteration"] for r in rows(run_dir)] == [1, 2, 3]
        assert head.poll() is None, "rlrun stopped a cluster it did not start"
    finally:
        tree = process_tree(head.pid)
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
    assert_all_gone(tree)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_missing_gpus_fail_fast_with_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(["learners.num=2", "learners.num_gpus_per_learner=1", "stop.iterations=1"], run_dir, tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len([line for line in lines if line.startswith("rlrun: error:")]) == 1, err
    assert "needs 2 GPUs" in lines[-1] and "learners.num_gpus_per_learner" in lines[-1]
    assert not run_dir.exists(), "a run that never started left a run directory"


def test_env_that_keeps_crashing_ends_in_one_line_and_stops_ray(tmp_path: Path) -> None:
    """The error exit path: restarts used up -> one line naming the limit and the env's error; Ray is gone."""
    run_dir = tmp_path / "run"
    proc, _, err, tree = run_with_a_crash(["env_runners.num=1", "env_runners.max_restarts=0",
                                           "stop.timesteps=100000000"], 1, tmp_path)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rlrun: error: env runner 1 failed")
    assert "env_runners.max_restarts=0" in last and "CrashOnceEnv crashed on purpose" in last
    assert (run_dir / "checkpoints" / "final" / "algorithm_state.json").is_file(), "the final checkpoint was lost"
    assert_all_gone(tree)

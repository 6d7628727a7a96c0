"""The `rlrun` CLI in Ray mode: a real local cluster, a real joined cluster, clean shutdown on every exit path."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import torch
from conftest import RLRUN, pythonpath_with_tests
from ray_head import driver_env, ray_head, reconnect

from rlrun.env.env_runner import WORKER_SEED_STRIDE
from rlrun.run.recorder import read_metrics

pytestmark = pytest.mark.ray
RETURN_KEY = "env_runners/episode_return_mean"


def cli_env() -> dict[str, str]:
    # Env runner actors import `user_envs` from tests/; Ray's workers inherit PYTHONPATH.
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath_with_tests()}


def start(args: list[str], run_dir: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [RLRUN, *args, f"hydra.run.dir={run_dir}", "logger.console=plain"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=env or cli_env(), preexec_fn=interruptible)


def interruptible() -> None:
    """In the child: Ctrl-C (SIGINT) interrupts, as in a terminal.

    A test suite started in the background of a non-interactive shell (`make test &`) ignores
    SIGINT, and children inherit that, so rlrun would never see the Ctrl-C a test sends.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def crash_env(seed: int, at_step: int) -> list[str]:
    """Overrides for CrashAtStepEnv: env 0 of env runner 1 raises at its `at_step`-th step, once.

    The crash lands at the same step in every run, and Ray mode is reproducible,
    so a run with a crash is deterministic: its outcome is no matter of luck.
    """
    crash_seed = seed + WORKER_SEED_STRIDE * 1
    return [f"seed={seed}", "env.id=user_envs:CrashAtStepEnv", f"+env.env_config.crash_seed={crash_seed}",
            f"+env.env_config.crash_at_step={at_step}"]


def run_and_watch(args: list[str], tmp_path: Path, timeout: float = 400) -> tuple[subprocess.Popen, str, str, list]:
    """Run rlrun to the end; returns it, its stdout and stderr, and every process seen in its tree meanwhile.

    The tree is what must be gone afterwards (Ray's GCS, raylet, workers, actors).
    """
    proc = start(args, tmp_path / "run", tmp_path)
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.NoSuchProcess):
            seen.update({p.pid: p for p in process_tree(proc.pid)})
        time.sleep(0.1)
    out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    return proc, out, err, list(seen.values())


@pytest.mark.own_ray
def test_ray_mode_replaces_a_crashing_runner(tmp_path: Path) -> None:
    """2 EnvRunner actors + 2 DDP learners; one runner's env crashes in iteration 2: it is replaced, the run goes on."""
    run_dir = tmp_path / "run"
    # 2 runners x 4 envs x 16 steps per iteration: env 0 of runner 1 crashes at its 20th step, in iteration 2.
    proc, out, err, tree = run_and_watch(
        ["env_runners.num=2", "env_runners.num_envs_per_runner=4", "learners.num=2", "algo.train_batch_size=128",
         "algo.minibatch_size=64", "algo.num_epochs=1", "stop.iterations=3", *crash_env(seed=0, at_step=20)],
        tmp_path)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "2 env runners x 4 envs" in out and "2 DDP learners (cpu, 1 thread each, gloo)" in out
    metrics = read_metrics(run_dir)
    assert [r["training_iteration"] for r in metrics] == [1, 2, 3]
    assert [r["fault_tolerance/num_remote_worker_restarts"] for r in metrics] == [0, 1, 1]
    # The crashed iteration trains on the healthy runner's samples; the replacement samples from iteration 3 on.
    assert [r["env_runners/num_healthy_env_runners"] for r in metrics] == [2, 1, 2]
    for key in ("timers/env_runner_sampling_timer", "timers/learner_update_timer", "timers/synch_weights",
                "num_env_steps_sampled_lifetime_throughput"):
        assert key in metrics[-1], key
    assert (run_dir / "checkpoints" / "final" / "learner_group" / "module_default_policy.safetensors").is_file()
    assert_all_gone(tree)


@pytest.mark.slow
def test_ray_mode_solves_cartpole_through_a_crashing_runner(tmp_path: Path) -> None:
    """The preset in Ray mode reaches 475 although a runner's env crashes in iteration 4 (a deterministic run)."""
    proc, _, err, _ = run_and_watch(
        ["experiment=cartpole_ppo_fast", "env_runners.num=2", "env_runners.num_envs_per_runner=8", "learners.num=2",
         *crash_env(seed=0, at_step=200)], tmp_path)
    assert proc.returncode == 0, err
    metrics = read_metrics(tmp_path / "run")
    assert metrics[-1]["fault_tolerance/num_remote_worker_restarts"] == 1
    assert metrics[-1][RETURN_KEY] >= 475


@pytest.mark.own_ray
def test_ctrl_c_writes_final_checkpoint_and_stops_ray(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Small iterations: the subject is the interrupt, not PPO's default 4000-step batches of 10 epochs.
    proc = start(["env_runners.num=1", "learners.num=2", "stop.timesteps=100000000", "algo.train_batch_size=128",
                  "algo.minibatch_size=64", "algo.num_epochs=1"], run_dir, tmp_path)
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and len(read_metrics(run_dir)) >= 2, proc)
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    state = json.loads((run_dir / "checkpoints" / "final" / "algorithm_state.json").read_text())
    assert state["iteration"] >= 2
    assert_all_gone(tree)


@pytest.mark.slow  # ~30 s; make test joins `ray start` clusters in tests/test_ray_join.py
def test_joins_an_existing_cluster_and_leaves_it_running(tmp_path: Path) -> None:
    """Env runner and DDP learner actors on a `ray start` cluster with token auth; the cluster outlives the run."""
    with ray_head(num_cpus=3) as head:
        run_dir = tmp_path / "run"
        # No RAY_AUTH_MODE: rlrun sends this machine's token (~/.ray/auth_token) by itself.
        proc = start([f"ray.address={head.address}", "env_runners.num=1", "learners.num=2", "stop.iterations=2",
                      "algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1"],
                     run_dir, tmp_path, driver_env(cli_env()))
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert err.strip() == "", "Ray's warnings reached the console"
        assert f":{head.port} (3 CPUs, 0 GPUs): 1 env runner x 8 envs" in out
        assert [r["training_iteration"] for r in read_metrics(run_dir)] == [1, 2]
        assert reconnect(head) == 3, "rlrun stopped a cluster it did not start"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
@pytest.mark.own_ray
def test_missing_gpus_fail_fast_with_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(["learners.num=2", "learners.num_gpus_per_learner=1", "stop.iterations=1"], run_dir, tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len([line for line in lines if line.startswith("rlrun: error:")]) == 1, err
    assert "needs 2 GPUs" in lines[-1] and "learners.num_gpus_per_learner" in lines[-1]
    assert not run_dir.exists(), "a run that never started left a run directory"


@pytest.mark.own_ray
def test_env_that_keeps_crashing_ends_in_one_line_and_stops_ray(tmp_path: Path) -> None:
    """The error exit path: restarts used up -> one line naming the limit and the env's error; Ray is gone."""
    run_dir = tmp_path / "run"
    # 8 envs x 32 steps per iteration: the crash lands in iteration 2.
    proc, _, err, tree = run_and_watch(
        ["env_runners.num=1", "env_runners.max_restarts=0", "algo.train_batch_size=256", "algo.minibatch_size=64",
         "algo.num_epochs=1", "stop.timesteps=100000000", *crash_env(seed=0, at_step=40)], tmp_path)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rlrun: error: env runner 1 failed")
    assert "env_runners.max_restarts=0" in last and "CrashAtStepEnv crashed on purpose" in last
    state = json.loads((run_dir / "checkpoints" / "final" / "algorithm_state.json").read_text())
    assert state["iteration"] == 1, "the final checkpoint was lost"
    assert_all_gone(tree)

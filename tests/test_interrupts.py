"""Ctrl-C in embedded mode: the first one finishes the iteration in flight, a second one stops at once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from conftest import RLRUN
from test_ray_cli import cli_env, interruptible

from rlrun.run.checkpoints import PERIODIC_PREFIX
from rlrun.run.recorder import read_metrics

# Tiny iterations: GateEnv holds iteration 2 in flight until the test opens its gate, so a Ctrl-C sent
# while it waits lands mid-iteration by construction (2 envs x 32 steps per iteration: step 100 is in iteration 2).
TINY_ITERATIONS = ["algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1",
                   "env_runners.num_envs_per_runner=2", "evaluation.episodes=2", "stop.timesteps=100000000",
                   "checkpoint.every_iterations=1", "logger.console=plain", "env.id=interrupts_envs:GateEnv",
                   "+env.env_config.block_at_step=100"]
STOPPING = "rlrun: stopping after this iteration"


def start(run_dir: Path) -> subprocess.Popen:
    gate = run_dir.parent / "gate"
    return subprocess.Popen([RLRUN, *TINY_ITERATIONS, f"+env.env_config.gate_file={gate}", f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=run_dir.parent,
                            env=cli_env(), preexec_fn=interruptible)


def rows_after_first_iteration(proc: subprocess.Popen, run_dir: Path) -> int:
    """Waits until iteration 1 is recorded and checkpointed and iteration 2 is held at the gate (in flight)."""
    deadline = time.monotonic() + 180
    waiting = run_dir.parent / "gate.waiting"
    while not ((run_dir / "checkpoints" / f"{PERIODIC_PREFIX}000001").is_dir() and waiting.exists()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "rlrun made no progress"
        time.sleep(0.05)
    return len(read_metrics(run_dir))


def open_gate(run_dir: Path) -> None:
    (run_dir.parent / "gate").touch()


def stderr_until_stopping(proc: subprocess.Popen) -> str:
    """stderr up to the line that shows the first Ctrl-C was handled (a second SIGINT sent before it could merge
    with the first: the kernel keeps one pending SIGINT, not two)."""
    lines = []
    while line := proc.stderr.readline():
        lines.append(line)
        if line.startswith(STOPPING):
            break
    return "".join(lines)


def final_iteration(run_dir: Path) -> int:
    return json.loads((run_dir / "checkpoints" / "final" / "algorithm_state.json").read_text())["iteration"]


def test_ctrl_c_finishes_the_iteration_in_flight_then_writes_the_final_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    rows = rows_after_first_iteration(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    err = stderr_until_stopping(proc)
    open_gate(run_dir)
    err += proc.communicate(timeout=180)[1]
    assert proc.returncode == 130, err
    assert "stopping after this iteration" in err and "the final checkpoint was written" in err, err
    assert "Traceback" not in err
    trained = len(read_metrics(run_dir))
    assert trained > rows, "the iteration in flight at Ctrl-C was dropped"
    assert final_iteration(run_dir) == trained, "the final checkpoint is not the last recorded iteration"


def test_a_second_ctrl_c_stops_at_once_without_a_final_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    rows = rows_after_first_iteration(proc, run_dir)
    proc.send_signal(signal.SIGINT)
    err = stderr_until_stopping(proc)
    proc.send_signal(signal.SIGINT)
    err += proc.communicate(timeout=180)[1]
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("rlrun: interrupted mid-iteration; "
                                             "resume from the last periodic checkpoint"), err
    assert len(read_metrics(run_dir)) == rows, "the abandoned iteration was recorded"
    assert not (run_dir / "checkpoints" / "final").exists(), "an abandoned iteration was checkpointed"
    open_gate(run_dir)  # the resumed run's GateEnv passes at once
    resumed = subprocess.run([RLRUN, f"resume={run_dir}", f"stop.iterations={rows + 1}"], capture_output=True,
                             text=True, cwd=tmp_path, env=cli_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["training_iteration"] for r in read_metrics(run_dir)] == list(range(1, rows + 2))

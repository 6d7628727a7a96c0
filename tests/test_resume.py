"""`rlrun resume=<dir>` through the real CLI: exact continuation, crashes, retention, refusals.

Every resume here is a real `rlrun` subprocess in embedded mode with a tiny config
(256-step batches, 4 envs), so each takes a few seconds, mostly imports. The runs a
resume starts from are made in this process by `rlrun.train` (the CLI's run directory,
`.hydra/` included, without a new interpreter's seconds of imports), except the ones
a test kills, which need a process of their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_reproducibility import is_timing

from rlrun.algorithms.algorithm import read_checkpoint_state
from rlrun.api import USER_ERRORS
from rlrun.api import train as rlrun_train
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.run.recorder import read_metrics

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("resume")

RLRUN = str(Path(sys.executable).with_name("rlrun"))
FAST = ("stop.timesteps=null", "env_runners.num_envs_per_runner=4", "algo.train_batch_size=256",
        "algo.minibatch_size=64", "algo.num_epochs=2", "evaluation.episodes=4", "logger.console=plain")
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONUNBUFFERED": "1"}

# Runs `rlrun` (argv[3:]) and stops it at a chosen point until the test SIGKILLs it: argv[1] is
# `train:<N>` (training iteration N is about to begin, so N - 1 metrics rows are written),
# `checkpoint:<name>` (the last file of that checkpoint, algorithm_state.json, is about to be
# written in its temporary directory) or `replace:<name>` (an existing checkpoint <name> has been
# moved aside to `.old-<name>-<pid>` and the complete new one is about to be moved in: the one
# moment of atomic_directory when <name> does not exist). There it touches the marker file
# argv[2] and sleeps.
PAUSE_FOR_KILL = """
import os, sys, time
from pathlib import Path
from rlrun.algorithms.algorithm import Algorithm
from rlrun.core import checkpointing
from rlrun.cli import main

(where, what), marker = sys.argv[1].split(":"), Path(sys.argv[2])
real_save_json, real_train, real_replace = checkpointing.save_json, Algorithm.train, os.replace

def replace(src, dst):
    src = Path(src)
    if where == "replace" and src.name.startswith(f".tmp-{what}-") and list(src.parent.glob(f".old-{what}-*")):
        pause()
    real_replace(src, dst)

def pause():
    marker.touch()
    time.sleep(600)

def save_json(path, obj):
    if where == "checkpoint" and path.name == "algorithm_state.json" and path.parent.name.startswith(f".tmp-{what}-"):
        pause()
    real_save_json(path, obj)

def train(self):
    if where == "train" and self.iteration + 1 == int(what):
        pause()
    return real_train(self)

checkpointing.save_json = save_json
Algorithm.train = train
checkpointing.os.replace = replace
sys.argv = ["rlrun", *sys.argv[3:]]
main()
"""


def rlrun(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([RLRUN, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=ENV)


def train_here(run_dir: Path, *args: str) -> Path:
    """A new run with FAST settings, made in this process: `rlrun.train` runs the CLI's job and writes the CLI's
    run directory, without a new interpreter's imports."""
    rlrun_train(*FAST, *args, f"hydra.run.dir={run_dir}")
    return run_dir


def iterations(run_dir: Path) -> list[int]:
    return [r["training_iteration"] for r in read_metrics(run_dir)]


def deterministic(row: dict, drop_evaluation: bool = False) -> dict:
    """A metrics row without wall-clock keys (and, if asked, without `evaluation/*`)."""
    return {k: v for k, v in row.items() if not any(is_timing(part) for part in k.split("/"))
            and k != "timestamp" and not (drop_evaluation and k.startswith("evaluation/"))}


def snapshot(run_dir: Path) -> dict[str, str]:
    """Every file of a run directory -> a hash of its content."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


def test_resumed_run_has_the_metrics_of_a_straight_run(tmp_path: Path) -> None:
    """2N iterations straight == N iterations, then resume to 2N: every non-timing metric, every iteration."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_here(straight, "stop.iterations=6", "evaluation.every_iterations=3")
    train_here(resumed, "stop.iterations=3", "evaluation.every_iterations=3")
    first_half = read_metrics(resumed)
    proc = rlrun(f"resume={resumed}", "stop.iterations=6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {resumed} from final (iteration 3)" in proc.stdout

    assert iterations(straight) == iterations(resumed) == [1, 2, 3, 4, 5, 6]
    assert read_metrics(resumed)[:3] == first_half  # appended to, not rewritten
    for a, b in zip(read_metrics(straight), read_metrics(resumed), strict=True):
        assert deterministic(a) == deterministic(b), f"iteration {a['training_iteration']} differs"
    assert "evaluation/episode_return_mean" in read_metrics(resumed)[5]
    assert "learners/default_policy/total_loss" in deterministic(read_metrics(resumed)[5])

    # The resumed run stays in its own directory, with the new stop criterion recorded in its config.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed", "straight"]
    assert "stop.iterations=6" in (resumed / ".hydra" / "overrides.yaml").read_text()
    assert "iterations: 6" in (resumed / ".hydra" / "config.yaml").read_text()
    assert "resume: null" in (resumed / ".hydra" / "config.yaml").read_text()
    assert len(list((resumed / "tensorboard").glob("events.out.tfevents.*"))) == 2


def kill_when_paused(where: str, run_dir: Path, *args: str) -> None:
    """Run `rlrun <args>` into run_dir until it pauses at `where` (see PAUSE_FOR_KILL), then SIGKILL it."""
    marker = run_dir.parent / "paused"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSE_FOR_KILL, where, str(marker), *args, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"{where} was never reached"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


def test_sigkill_mid_training_resumes_from_last_complete_checkpoint(tmp_path: Path) -> None:
    """Killed in iteration 6 with checkpoints every 3: iterations 4 and 5 were done after the last checkpoint."""
    run_dir = tmp_path / "run"
    kill_when_paused("train:6", run_dir, *FAST, "stop.iterations=100000", "checkpoint.every_iterations=3")
    killed_rows = read_metrics(run_dir)
    assert iterations(run_dir) == [1, 2, 3, 4, 5]
    assert checkpoint_names(run_dir) == ["checkpoint_000003"]

    proc = rlrun(f"resume={run_dir}", "stop.iterations=6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "from checkpoint_000003 (iteration 3)" in proc.stdout

    assert iterations(run_dir) == [1, 2, 3, 4, 5, 6], "a gap or a duplicate iteration"
    assert read_metrics(run_dir)[:3] == killed_rows[:3]
    # Iterations the killed process finished after its last checkpoint come out the same again.
    for before, after in zip(killed_rows[3:], read_metrics(run_dir)[3:5], strict=True):
        assert deterministic(before) == deterministic(after, drop_evaluation=True)
    assert not [n for n in checkpoint_names(run_dir) if n.startswith(".")]


def test_sigkill_while_writing_a_checkpoint_resumes_from_the_previous_one(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    kill_when_paused("checkpoint:checkpoint_000004", run_dir, *FAST, "stop.iterations=100000",
                     "checkpoint.every_iterations=2")
    unfinished = [n for n in checkpoint_names(run_dir) if n.startswith(".tmp-checkpoint_000004-")]
    assert unfinished and (run_dir / "checkpoints" / unfinished[0] / "env_runners.pt").is_file()
    assert checkpoint_names(run_dir) == sorted(["checkpoint_000002", *unfinished])
    assert iterations(run_dir) == [1, 2, 3, 4]

    proc = rlrun(f"resume={run_dir}", "stop.iterations=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "from checkpoint_000002 (iteration 2)" in proc.stdout
    assert iterations(run_dir) == [1, 2, 3, 4, 5]
    assert checkpoint_names(run_dir) == ["best", "checkpoint_000002", "checkpoint_000004", "final"]


def test_sigkill_between_moving_a_checkpoint_aside_and_its_replacement_in(tmp_path: Path) -> None:
    """The crash window of atomic_directory: `best` moved to `.old-best-*`, its complete replacement still `.tmp-*`.

    An evaluation every iteration rewrites `best` at the first improvement after iteration 1;
    the kill lands right there. Resuming puts the previous `best` back (the unfinished replacement
    never counts), starts from the last complete checkpoint, continues the metrics without a gap,
    ends with a `best` that holds the best evaluation, and leaves no `.old-*` or `.tmp-*` behind.
    """
    run_dir = tmp_path / "run"
    kill_when_paused("replace:best", run_dir, *FAST, "stop.iterations=100000", "checkpoint.every_iterations=1",
                     "evaluation.every_iterations=1")
    names = checkpoint_names(run_dir)
    old = [n for n in names if n.startswith(".old-best-")]
    unfinished = [n for n in names if n.startswith(".tmp-best-")]
    assert old and unfinished and "best" not in names, names
    crashed_at = read_checkpoint_state(run_dir / "checkpoints" / unfinished[0])["iteration"]
    old_best = read_checkpoint_state(run_dir / "checkpoints" / old[0])
    assert old_best["iteration"] < crashed_at == len(read_metrics(run_dir))

    proc = rlrun(f"resume={run_dir}", f"stop.iterations={crashed_at + 1}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    resumed_from = crashed_at - 1  # checkpoint_<crashed_at> comes after best: it was never written
    assert f"(iteration {resumed_from})" in proc.stdout, proc.stdout
    assert iterations(run_dir) == list(range(1, crashed_at + 2))
    assert not [n for n in checkpoint_names(run_dir) if n.startswith(".")], checkpoint_names(run_dir)
    returns = [r["evaluation/episode_return_mean"] for r in read_metrics(run_dir)]
    best = read_checkpoint_state(run_dir / "checkpoints" / "best")
    assert old_best["evaluation"]["episode_return_mean"] == returns[old_best["iteration"] - 1]
    assert best["evaluation"]["episode_return_mean"] == max(returns)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """5 iterations, a checkpoint and an evaluation after each, the newest 2 periodic checkpoints kept."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train_here(run_dir, "stop.iterations=5", "checkpoint.every_iterations=1", "checkpoint.keep_last=2",
               "evaluation.every_iterations=1")
    return run_dir


def test_keep_last_and_best_checkpoint(finished_run: Path) -> None:
    assert checkpoint_names(finished_run) == ["best", "checkpoint_000004", "checkpoint_000005", "final"]
    returns = [r["evaluation/episode_return_mean"] for r in read_metrics(finished_run)]
    best = read_checkpoint_state(finished_run / "checkpoints" / "best")
    assert best["evaluation"]["episode_return_mean"] == max(returns)
    assert best["iteration"] == returns.index(max(returns)) + 1  # only a strictly better evaluation replaces it
    assert read_checkpoint_state(finished_run / "checkpoints" / "final")["iteration"] == 5


def test_resume_from_an_older_checkpoint_drops_what_came_after(finished_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    old_final = read_checkpoint_state(run_dir / "checkpoints" / "final")
    proc = rlrun(f"resume={run_dir / 'checkpoints' / 'checkpoint_000004'}", "stop.iterations=6",
                 "checkpoint.every_iterations=0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "from checkpoint_000004 (iteration 4)" in proc.stdout
    assert iterations(run_dir) == [1, 2, 3, 4, 5, 6]
    assert deterministic(read_metrics(run_dir)[4], drop_evaluation=True) == deterministic(
        read_metrics(finished_run)[4], drop_evaluation=True)
    assert checkpoint_names(run_dir) == ["best", "checkpoint_000004", "final"]
    assert read_checkpoint_state(run_dir / "checkpoints" / "final")["iteration"] == 6
    assert old_final["iteration"] == 5


def _corrupt_copy(finished_run: Path, dest: Path) -> Path:
    """Every checkpoint damaged: with one intact, resume would fall back to it (tests/test_checkpoint_corrupt.py)."""
    shutil.copytree(finished_run, dest)
    for checkpoint in (dest / "checkpoints").iterdir():
        (checkpoint / "env_runners.pt").write_bytes(b"\x00 not a checkpoint")
    return dest


def _without_checkpoints(finished_run: Path, dest: Path) -> Path:
    shutil.copytree(finished_run, dest)
    shutil.rmtree(dest / "checkpoints")
    return dest


# Through the real CLI: a change the run refuses, a corrupt checkpoint and the multirun flag. The other refusals
# take the same path out of rlrun.cli (a ConfigError or CheckpointError, printed as its one line), so they are
# checked in this process by rlrun.train, which raises the error the CLI prints: no new interpreter's imports.
IN_PROCESS = {"unsafe-group", "missing-dir", "no-checkpoint", "already-stopped"}


@pytest.mark.parametrize(
    ("case", "make", "args", "expected"),
    [
        ("unsafe-override", None, ["algo.lr=0.1", "stop.iterations=9"], ["algo.lr", "stop.*", "evaluation.*"]),
        ("unsafe-group", None, ["env=acrobot", "stop.iterations=9"], ["cannot change env"]),
        ("missing-dir", "missing", ["stop.iterations=9"], ["does not exist"]),
        ("no-checkpoint", _without_checkpoints, ["stop.iterations=9"], ["no complete checkpoint"]),
        ("corrupt-checkpoint", _corrupt_copy, ["stop.iterations=9"],
         ["no intact checkpoint", "env_runners.pt is corrupt"]),
        ("already-stopped", None, [], ["already reached iterations >= 5", "stop.*"]),
        ("multirun", None, ["-m", "stop.iterations=7,8"], ["--multirun"]),
    ],
)
def test_bad_resume_is_one_line_and_changes_nothing(finished_run: Path, tmp_path: Path, monkeypatch, capfd,
                                                    case, make, args, expected):
    if make is None:
        run_dir = finished_run
    elif make == "missing":
        run_dir = tmp_path / "nowhere"
    else:
        run_dir = make(finished_run, tmp_path / "run")
    before = snapshot(run_dir) if run_dir.exists() else None
    if case in IN_PROCESS:
        monkeypatch.chdir(tmp_path)  # where the CLI would run, so that no outputs/ or multirun/ appears there
        with pytest.raises(USER_ERRORS) as error:
            rlrun_train(f"resume={run_dir}", *args)
        line = f"rlrun: error: {one_line(error.value)}"  # what rlrun.cli prints for it, and exits 2
        lines = [*capfd.readouterr().err.splitlines(), line]
    else:
        proc = rlrun(f"resume={run_dir}", *args, cwd=tmp_path)
        assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun: error: "), lines
    for text in expected:
        assert text in lines[0]
    assert (snapshot(run_dir) if run_dir.exists() else None) == before
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()

"""Corrupt checkpoints through the real CLI: one line naming the file, and `resume=<run dir>` falling back.

A file of a checkpoint that a disk, a copy or a hand damaged must end in one line that
names it and says it is corrupt -- never torch's advice to retry with `weights_only=False`,
which would run whatever code an untrusted file holds. `resume=<run dir>` continues from
the newest checkpoint that is whole, says which ones it skipped and why, and keeps them in
`corrupt_checkpoints/` rather than deleting them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_resume import checkpoint_names, deterministic, iterations, rlrun, snapshot, train_here

from rlrun.algorithms.algorithm import read_checkpoint_state
from rlrun.api import train as rlrun_train
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.core.checkpointing import CheckpointError
from rlrun.run.recorder import read_metrics

# One worker runs the module: its tests share a module fixture (a run or sweep), made once per worker.
pytestmark = pytest.mark.xdist_group("checkpoint_corrupt")

GARBAGE = b"\x00\x9f\xff\xfe not a checkpoint \x80\x81"
# Every file of a PPO checkpoint, relative to the checkpoint directory.
CHECKPOINT_FILES = ("algorithm_state.json", "env_runners.pt", "spaces.json", "learner_group/optimizer.pt",
                    "learner_group/rng.pt", "learner_group/learner_vars.json",
                    "learner_group/module_default_policy.safetensors")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """3 iterations, a checkpoint after each: checkpoint_00000{1,2,3}, and final and best at iteration 3.

    Made in this process (`rlrun.train` writes the CLI's run directory); every resume of it is a real `rlrun`.
    """
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train_here(run_dir, "stop.iterations=3", "checkpoint.every_iterations=1")
    assert checkpoint_names(run_dir) == ["best", "checkpoint_000001", "checkpoint_000002", "checkpoint_000003",
                                         "final"]
    return run_dir


def copy_with_garbage(finished_run: Path, dest: Path, *files: str) -> Path:
    """A copy of the run with each of `files` (relative to the run directory) overwritten with garbage."""
    shutil.copytree(finished_run, dest)
    for name in files:
        (dest / name).write_bytes(GARBAGE)
    return dest


def one_error_line(proc, skipped: int = 0) -> str:
    """The error line of a refused command, checked to be rlrun's only one, with status 2 and no traceback.

    Before it may come `skipped` warnings that a resume passed over a corrupt checkpoint: they say
    why the run would have gone on from an older one.
    """
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len([line for line in lines if "[WARNING] - skipping checkpoint " in line]) == skipped, proc.stderr
    lines = lines[skipped:]
    assert len(lines) == 1 and lines[0].startswith("rlrun: error: "), proc.stderr
    return lines[0]


def test_checkpoint_files_cover_the_checkpoint(finished_run: Path) -> None:
    """CHECKPOINT_FILES is every file a checkpoint has, so the test below corrupts each one."""
    final = finished_run / "checkpoints" / "final"
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*") if p.is_file()) == sorted(CHECKPOINT_FILES)


# Through the real CLI: a torch archive and a JSON file. Every corrupt file takes the same path out of rlrun.cli
# (a CheckpointError, printed as its one line), so the others are resumed in this process by rlrun.train, which
# raises the error the CLI prints: no new interpreter's imports for each.
CLI_FILES = ("algorithm_state.json", "env_runners.pt")


@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_a_corrupt_file_of_a_named_checkpoint_is_one_line_naming_it(finished_run: Path, tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture[str],
                                                                     name: str) -> None:
    run_dir = copy_with_garbage(finished_run, tmp_path / "run", f"checkpoints/final/{name}")
    before = snapshot(run_dir)
    resume = f"resume={run_dir / 'checkpoints' / 'final'}"
    if name in CLI_FILES:
        proc = rlrun(resume, "stop.iterations=5", cwd=tmp_path)
        line, stderr = one_error_line(proc), proc.stderr
    else:
        with pytest.raises(CheckpointError) as error:
            rlrun_train(resume, "stop.iterations=5")
        line = f"rlrun: error: {one_line(error.value)}"  # what rlrun.cli prints for it, its only stderr line
        assert "\n" not in line
        stderr = capfd.readouterr().err + line
    assert f"checkpoint file {run_dir / 'checkpoints' / 'final' / name} is corrupt (" in line
    assert "weights_only" not in stderr
    assert snapshot(run_dir) == before


def test_resume_of_a_run_falls_back_to_its_newest_intact_checkpoint(finished_run: Path, tmp_path: Path) -> None:
    """Every checkpoint of iteration 3 is damaged: the run goes on from checkpoint_000002, and keeps the others."""
    damaged = {"final": "learner_group/optimizer.pt", "checkpoint_000003": "env_runners.pt",
               "best": "learner_group/rng.pt"}
    run_dir = copy_with_garbage(finished_run, tmp_path / "run",
                                *(f"checkpoints/{ckpt}/{name}" for ckpt, name in damaged.items()))
    proc = rlrun(f"resume={run_dir}", "stop.iterations=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run_dir} from checkpoint_000002 (iteration 2)" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if "skipping checkpoint" in line]
    for ckpt, name in damaged.items():
        assert any(f"skipping checkpoint {ckpt}," in line and f"{run_dir}/checkpoints/{ckpt}/{name} is corrupt" in line
                   for line in warnings), proc.stderr
    assert "weights_only" not in proc.stderr

    # The run continues where checkpoint_000002 left it: iteration 3 comes out as the first time.
    assert iterations(run_dir) == [1, 2, 3, 4]
    assert deterministic(read_metrics(run_dir)[2], drop_evaluation=True) == deterministic(
        read_metrics(finished_run)[2], drop_evaluation=True)
    assert checkpoint_names(run_dir) == ["best", "checkpoint_000001", "checkpoint_000002", "checkpoint_000003",
                                         "checkpoint_000004", "final"]
    assert read_checkpoint_state(run_dir / "checkpoints" / "final")["iteration"] == 4
    # Nothing was deleted: the damaged checkpoints are kept, as they were, beside checkpoints/.
    assert sorted(p.name for p in (run_dir / "corrupt_checkpoints").iterdir()) == sorted(damaged)
    for ckpt, name in damaged.items():
        kept, original = snapshot(run_dir / "corrupt_checkpoints" / ckpt), snapshot(finished_run / "checkpoints" / ckpt)
        assert kept.keys() == original.keys()
        assert {k: v for k, v in kept.items() if k != name} == {k: v for k, v in original.items() if k != name}
        assert (run_dir / "corrupt_checkpoints" / ckpt / name).read_bytes() == GARBAGE
    assert "moved checkpoint final to" in (run_dir / "rlrun.log").read_text()


@pytest.mark.parametrize(
    ("case", "files", "args", "skipped", "expected"),
    [
        # No checkpoint is whole: the error names each one and why.
        ("all-corrupt", [f"checkpoints/{c}/env_runners.pt" for c in ("best", "checkpoint_000001", "checkpoint_000002",
                                                                    "checkpoint_000003", "final")],
         ["stop.iterations=5"], 0, ["has no intact checkpoint", "checkpoint_000001: checkpoint file", "is corrupt ("]),
        # The fallback (checkpoint_000003) already met stop.iterations=3: the damaged final stays where it was.
        ("corrupt-and-already-stopped", ["checkpoints/final/learner_group/optimizer.pt"], [], 1,
         ["already reached iterations >= 3"]),
    ],
)
def test_a_refused_resume_of_a_damaged_run_changes_nothing(finished_run: Path, tmp_path: Path, case: str,
                                                           files: list[str], args: list[str], skipped: int,
                                                           expected: list[str]) -> None:
    run_dir = copy_with_garbage(finished_run, tmp_path / "run", *files)
    before, log_before = snapshot(run_dir), (run_dir / "rlrun.log").read_text()
    line = one_error_line(rlrun(f"resume={run_dir}", *args, cwd=tmp_path), skipped)
    for text in expected:
        assert text in line
    # The run's log may have gained the warnings; everything else is as it was.
    assert (run_dir / "rlrun.log").read_text().startswith(log_before)
    assert {k: v for k, v in snapshot(run_dir).items() if k != "rlrun.log"} == {
        k: v for k, v in before.items() if k != "rlrun.log"}

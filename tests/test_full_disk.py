"""A checkpoint the disk cannot take, on a real small file system (a tmpfs mounted for the test): the run ends in
one line naming the checkpoint and the OS's reason, leaves no partial files, and resumes from the previous one.

The disk fills during the run: a callback (user_callbacks.FillDiskAfterFirstCheckpoint) fills the tmpfs after
checkpoint 1, leaving room for the next metrics rows but not for checkpoint 2.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import pythonpath_with_tests

RUN = ("env_runners.num_envs_per_runner=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
       "algo.num_epochs=1", "stop.timesteps=null", "checkpoint.every_iterations=1")


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """An 8 MiB tmpfs at tmp_path/disk, unmounted afterwards (mounting needs root, as in the CI container)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def test_a_full_disk_ends_the_run_in_one_line_and_the_run_resumes(run_cli, small_tmpfs: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())  # the callback comes from tests/
    run_dir = small_tmpfs / "run"
    result = run_cli(*RUN, "stop.iterations=5", "callbacks=[user_callbacks:FillDiskAfterFirstCheckpoint]",
                     run_dir=run_dir)
    assert result.returncode != 0
    checkpoint_2 = run_dir / "checkpoints" / "checkpoint_000002"
    errors = [line for line in result.stderr.splitlines() if line.startswith("rlrun: error:")]
    assert errors == [f"rlrun: error: could not write checkpoint {checkpoint_2}: No space left on device; the "
                      "previous checkpoints are intact"], result.stderr
    assert "Traceback" not in result.stderr
    # Checkpoint 1 whole, nothing of checkpoint 2 or of a final one, no temporary directory.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint_000001"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["training_iteration"] for row in rows] == [1, 2]

    (run_dir / "filler").unlink()
    resumed = run_cli(f"resume={run_dir}", "stop.iterations=4", run_dir=run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "from checkpoint_000001 (iteration 1)" in resumed.stdout
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["training_iteration"] for row in rows] == [1, 2, 3, 4]
    assert (run_dir / "checkpoints" / "final").is_dir()

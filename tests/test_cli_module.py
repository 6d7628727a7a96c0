"""`python -m rlrun` and `python -m rlrun.cli` are the `rlrun` command: same help, same config, same runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import RLRUN

from rlrun.run.recorder import read_metrics

MODULES = ["rlrun", "rlrun.cli"]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def python_m(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", module, *args], cwd)


def test_module_composes_the_config_as_the_command_does(tmp_path: Path) -> None:
    """Hydra finds rlrun's configs (package rlrun.conf), job name and overrides under -m as under the script."""
    args = ["--cfg", "hydra", "stop.iterations=7", f"hydra.run.dir={tmp_path / 'run'}"]
    as_script = run([RLRUN, *args], tmp_path)
    assert "- stop.iterations=7" in as_script.stdout and "name: rlrun" in as_script.stdout
    for module in MODULES:
        as_module = python_m(module, *args, cwd=tmp_path)
        assert as_module.returncode == 0, as_module.stderr
        assert as_module.stdout == as_script.stdout, module


def test_module_help_is_rlruns_own_page(tmp_path: Path) -> None:
    as_module = python_m("rlrun", "--help", cwd=tmp_path)
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout.startswith("usage: rlrun ")
    assert as_module.stdout == run([RLRUN, "--help"], tmp_path).stdout


def test_module_runs_an_experiment(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = python_m("rlrun", "stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
                      "algo.num_epochs=1", f"hydra.run.dir={run_dir}", "logger.console=plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [r["training_iteration"] for r in read_metrics(run_dir)] == [1]
    assert (run_dir / "rlrun.log").is_file()  # Hydra's job name is rlrun's, as under the script

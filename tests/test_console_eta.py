"""The console through the CLI: the eta projects whichever stop criterion ends the run first, and evaluation
returns show under their own name, never as the training return."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RLRUN
from test_console import printed, row

from rlrun.run.plots import EVAL_RETURN_KEY, RETURN_KEY
from rlrun.run.recorder import read_metrics

# One worker runs the module: its tests share a module fixture (a run or sweep), made once per worker.
pytestmark = pytest.mark.xdist_group("console_eta")

# DQN samples 4 env steps per iteration with one env: no CartPole episode ends within the first
# iteration, and the evaluation (every iteration) is the only return there is.
DQN_EVALUATED = ["algo=dqn", "env_runners.num_envs_per_runner=1", "env_runners.rollout_fragment_length=4",
                 "evaluation.every_iterations=1", "evaluation.episodes=1"]


def progress(out: str) -> dict[int, dict[str, str]]:
    """The plain console's progress lines by iteration, as {key: value} (`iter=2  return=9.0  ...`)."""
    lines = [dict(field.split("=", 1) for field in line.split("  ")) for line in out.splitlines()
             if line.startswith("iter=")]
    return {int(fields["iter"]): fields for fields in lines}


def eta(seconds: float) -> str:
    return f"{seconds:.0f}s"


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, dict[str, str]], list[dict[str, Any]]]:
    """One 3-iteration DQN run (the default stop.timesteps is 1M): its progress lines and its metrics rows."""
    tmp = tmp_path_factory.mktemp("dqn")
    cmd = [RLRUN, *DQN_EVALUATED, "stop.iterations=3", f"hydra.run.dir={tmp / 'run'}", "logger.console=plain"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr
    return progress(result.stdout), read_metrics(tmp / "run")


def test_eta_projects_the_iterations_that_end_the_run(dqn_run) -> None:
    lines, rows = dqn_run
    assert lines and lines.keys() <= {1, 2, 3}
    for i, line in lines.items():
        elapsed = rows[i - 1]["time_total_s"]
        assert line["eta"] == eta((3 - i) * elapsed / i), line  # the pace so far, for the iterations left
    assert lines[3]["eta"] == "0s"


def test_every_evaluation_return_is_shown(dqn_run) -> None:
    lines, rows = dqn_run
    assert lines.keys() == {1, 2, 3}  # each iteration evaluated, so each has its line however fast it came
    for i, line in lines.items():
        assert line["eval_return"] == f"{rows[i - 1][EVAL_RETURN_KEY]:.1f}", line


def test_evaluation_return_is_never_shown_as_the_training_return(dqn_run) -> None:
    lines, rows = dqn_run
    assert RETURN_KEY not in rows[0], "an episode ended in iteration 1: this run cannot show the mislabelling"
    assert lines[1]["return"] == "-"


def test_eta_projects_stop_time_s(run_cli, tmp_path: Path) -> None:
    result = run_cli("stop.timesteps=null", "stop.time_s=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
                     "algo.num_epochs=1")
    assert result.returncode == 0, result.stderr
    rows = read_metrics(tmp_path / "run")
    lines = progress(result.stdout)
    assert lines
    for i, line in lines.items():
        assert line["eta"] == eta(max(1 - rows[i - 1]["time_total_s"], 0.0)), line


def test_rich_display_shows_the_evaluation_return_by_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from rlrun.run.console_rich import RichDisplay

    metrics = {**row(1, 1000, 1000), EVAL_RETURN_KEY: 42.0}
    screen = Console(file=io.StringIO(), width=200)
    screen.print(RichDisplay(10_000)._table(metrics))
    header, values = [[cell.strip() for cell in re.split("[┃│]", line)[1:-1]]
                      for line in screen.file.getvalue().splitlines() if line[0] in "┃│"]
    assert dict(zip(header, values, strict=True))["eval_return"] == "42.0"
    # and the plain display (test_console's helper) labels it the same way
    assert "  eval_return=42.0  " in printed(capsys, [metrics])[0]

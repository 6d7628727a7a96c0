"""`--help` / `-h` on every entry point: status 0, the keys a user can set, and an example.

`--help` goes through the installed console scripts (subprocesses); `-h` calls each `main()` in
this process, which is the same code path without the start-up cost.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from test_config import ALL_OPTIONS

from rlrun import cli, cli_eval
from rlrun.algorithms.registry import algorithm_schemas
from rlrun.config.schema import GROUP_SCHEMAS, LOGGER_SCHEMAS, RunSchema
from rlrun.report import cli as report_cli
from rlrun.run.evaluation import EvalRequest

BIN = Path(sys.executable).parent


def _schema_keys(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema) if f.name != "name"]


def _rlrun_expectations() -> list[str]:
    """Every group option, every schema key, the top-level keys, and how to see the full config."""
    texts = [f"{group}=" for group, _ in ALL_OPTIONS] + [option for _, option in ALL_OPTIONS]
    texts += ["hparams_search=", "dqn_cartpole_optuna", "ppo_cartpole_optuna", "hydra/launcher=parallel",
              "rlrun --cfg job", "examples:"]
    for schema in [*GROUP_SCHEMAS.values(), *algorithm_schemas().values()]:
        texts += _schema_keys(schema)
    texts += ["seed", "resume", "stop.timesteps", "stop.return_mean", "checkpoint.keep_last", "evaluation.episodes",
              "ray.address"]
    return texts


EXPECTED = {
    "rlrun": _rlrun_expectations(),
    "rlrun-eval": [f"{f.name}=" for f in dataclasses.fields(EvalRequest)] + ["examples:", "rlrun-eval checkpoint="],
    "rlrun-report": ["DIR", "--out", "--threshold", "examples:", "rlrun-report multirun/"],
}


def _check_page(entry: str, text: str) -> None:
    for expected in EXPECTED[entry]:
        assert expected in text, f"{expected!r} missing from `{entry} --help`:\n{text}"
    assert "schema/" not in text  # Hydra's internal groups are no choice of the user's
    assert "Traceback" not in text


@pytest.mark.parametrize("entry", sorted(EXPECTED))
def test_help_flag_of_each_entry_point(entry: str, tmp_path: Path):
    proc = subprocess.run([str(BIN / entry), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    _check_page(entry, proc.stdout)
    assert not any(tmp_path.iterdir()), "--help must not create a run directory"


@pytest.mark.parametrize("entry", sorted(EXPECTED))
def test_short_help_flag_in_process(entry: str, capsys, monkeypatch):
    _check_page(entry, _help_in_process(entry, "-h", monkeypatch, capsys))


def test_rlrun_help_lists_each_group_once_with_all_its_options(capsys, monkeypatch):
    text = _help_in_process("rlrun", "--help", monkeypatch, capsys)
    groups = {group for group, _ in ALL_OPTIONS}
    for group in groups - {"algo"}:  # `algo=<name>` is one row per algorithm: each has its own keys
        options = sorted(option for g, option in ALL_OPTIONS if g == group)
        rows = [line.split()[0] for line in text.splitlines() if line.strip().startswith(f"{group}=")]
        # The logger group adds one row per tracker, naming the keys that tracker adds.
        extra = [f"logger={name}" for name in sorted(LOGGER_SCHEMAS)] if group == "logger" else []
        assert rows == [f"{group}={'|'.join(options)}", *extra]
    top_level = text.split("top-level keys:")[1].split("examples:")[0]
    for f in dataclasses.fields(RunSchema):
        if f.name not in groups:
            assert f.name in top_level, f.name


def _help_in_process(entry: str, flag: str, monkeypatch, capsys) -> str:
    """`entry flag` through the entry point's main(); returns what it printed."""
    main = {"rlrun": cli.main, "rlrun-eval": cli_eval.main, "rlrun-report": report_cli.main}[entry]
    monkeypatch.setattr(sys, "argv", [entry, flag])
    for name in ("HYDRA_FULL_ERROR", cli.FAILED_JOBS_ENV):  # rlrun's main() sets them: restore them afterwards
        monkeypatch.setenv(name, "")
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    return capsys.readouterr().out


def test_hydra_help_is_still_hydras(tmp_path: Path):
    proc = subprocess.run([str(BIN / "rlrun"), "--hydra-help"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Hydra" in proc.stdout and "--cfg" in proc.stdout

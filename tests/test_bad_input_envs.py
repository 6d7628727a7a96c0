"""User envs rlrun cannot train on (tests/user_envs.py), through the real CLI: one line, exit 2, nothing left behind.

The env is only found to be unusable once it is imported and built, so these go further
into a run than the config checks of test_cli_errors.py and must still end before it starts.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import RLRUN, pythonpath_with_tests

from rlrun.cli import EXIT_USAGE


@pytest.mark.parametrize(
    ("env_class", "expected"),
    [
        ("TupleActionEnv", ["does not support", "action space Tuple(Discrete(2), Discrete(3))",
                            "Discrete, MultiDiscrete, MultiBinary, Box; no algorithm takes Tuple"]),
        ("DictObsEnv", ["observation space Dict('note': Text(", "has no part the models can use"]),
        ("BrokenEnv", ["could not be created", "RuntimeError: BrokenEnv refuses to start"]),
    ],
)
def test_unusable_user_env_is_one_line_error(tmp_path: Path, env_class: str, expected: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONPATH": pythonpath_with_tests()}
    proc = subprocess.run(
        [RLRUN, f"env.id=user_envs:{env_class}", "stop.iterations=1", "algo.train_batch_size=64",
         "algo.minibatch_size=32", "logger.console=plain", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun: error: "), proc.stderr
    for text in [f"env 'user_envs:{env_class}'", *expected]:
        assert text in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == [], "a rejected run left files behind"

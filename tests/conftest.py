"""Shared fixtures: small, fast configs and a subprocess runner for the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RLRUN = str(Path(sys.executable).with_name("rlrun"))
TESTS_DIR = REPO / "tests"


def pythonpath_with_tests() -> str:
    """PYTHONPATH for a subprocess (or Ray's workers) that must import `user_envs` from tests/."""
    return os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run `rlrun <args>` in a subprocess with its run directory under tmp_path/run."""

    def run(*args: str, run_dir: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        run_dir = run_dir or tmp_path / "run"
        cmd = [RLRUN, *args, f"hydra.run.dir={run_dir}", "logger.console=plain"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)

    return run


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray instance for one test module; actors can import `user_envs` from tests/."""
    import ray

    tests_dir = str(TESTS_DIR)
    pythonpath = os.environ.get("PYTHONPATH")
    # Workers inherit PYTHONPATH from the process that starts Ray.
    os.environ["PYTHONPATH"] = pythonpath_with_tests()
    sys.path.insert(0, tests_dir)
    # address="local": never join a cluster another test (or `ray start`) left behind.
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    sys.path.remove(tests_dir)
    if pythonpath is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = pythonpath

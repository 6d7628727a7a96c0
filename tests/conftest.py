"""Shared fixtures: small, fast configs, a subprocess runner for the CLI, and the CLI's fork server."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cli_server
import pytest

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.scheduler import LoadGroupScheduling
    from xdist.workermanage import WorkerController

REPO = Path(__file__).resolve().parents[1]
RLRUN = str(Path(sys.executable).with_name("rlrun"))
TESTS_DIR = REPO / "tests"


def pythonpath_with_tests() -> str:
    """PYTHONPATH for a subprocess (or Ray's workers) that must import `user_envs` from tests/."""
    return os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session", autouse=True)
def _cli_fork_server():
    """The tests' `rlrun` / `rlrun-eval` / `rlrun-report` processes fork from one that imported torch and
    rlrun once (tests/cli_server.py): each is still a process of its own running the script's entry point,
    without paying ~3.7 s of CPU for imports. RLRUN_TESTS_FRESH_PROCESSES=1 makes each a fresh exec."""
    undo = cli_server.start()
    yield
    undo()


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run `rlrun <args>` in a subprocess with its run directory under tmp_path/run."""

    def run(*args: str, run_dir: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        run_dir = run_dir or tmp_path / "run"
        cmd = [RLRUN, *args, f"hydra.run.dir={run_dir}", "logger.console=plain"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)

    return run


@pytest.fixture(scope="session")
def _ray_worker_path():
    """For the whole session: Ray's workers (which inherit PYTHONPATH) and this process import from tests/."""
    tests_dir = str(TESTS_DIR)
    pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = pythonpath_with_tests()
    sys.path.insert(0, tests_dir)
    yield
    import ray

    ray.shutdown()
    sys.path.remove(tests_dir)
    if pythonpath is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = pythonpath


_shared_ray: dict[str, str] = {}


def connect_shared_ray() -> None:
    """Connect this process to the session's shared local Ray instance, starting it if needed (`ray_cluster`).

    A module fixture that builds Ray actors once for several tests calls it too (besides asking for
    `_ray_worker_path`): it is set up before the test's own `ray_cluster`, which then keeps this instance.
    """
    import ray

    if ray.is_initialized() and ray.get_runtime_context().gcs_address != _shared_ray.get("address"):
        ray.shutdown()
    if not ray.is_initialized():
        # address="local": never join a cluster another test (or `ray start`) left behind.
        context = ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
        _shared_ray["address"] = context.address_info["gcs_address"]


@pytest.fixture
def ray_cluster(_ray_worker_path):
    """One real local Ray instance shared by every test that only needs a cluster to run on.

    Starting Ray costs seconds, so the instance lives for the whole session. Tests
    whose subject is the cluster's lifecycle start and stop their own; if one left
    another instance connected (or none), it is replaced here by a fresh shared one.
    """
    connect_shared_ray()
    yield


@pytest.fixture
def ray_disconnected(_ray_worker_path):
    """For tests of a cluster's lifecycle in this process: the shared instance is stopped first.

    The next test that asks for `ray_cluster` starts a new one.
    """
    import ray

    ray.shutdown()
    yield
    ray.shutdown()


RAY_GROUP = "ray"


def pytest_collection_finish(session: pytest.Session) -> None:
    """The test process's modules and collected tests live all session: frozen, its garbage collections skip them
    (each full collection otherwise walks every object torch, Ray and the test modules created)."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2` (make test), the tests that share Ray run on one worker, one after another.

    They share the session's Ray instance (`ray_cluster`), so they must stay in one process; the
    other worker runs the rest beside them. A test that starts Ray in another way carries the `ray`
    marker and joins them, unless it shares nothing with them: one that starts and stops its own
    instance in this process (`ray_disconnected`), or one whose instance lives and dies inside a
    subprocess it starts (a local instance, never `ray start` or `address=auto`), which also
    carries `own_ray`. Those may run on either worker, which keeps the group from being the
    suite's critical path.

    First (tryfirst): xdist names each test's group in this same hook, from the `xdist_group`
    marks it finds, so a mark added after it would group nothing (and did: the Ray tests ran on
    both workers, each with a shared instance of its own). A Ray test in a module with a group of
    its own lands in a unit named by both ("pixels" + "ray": "pixels_ray"), apart from the Ray
    group: it works (its worker starts a shared instance of its own) but pays another Ray start.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        own = item.get_closest_marker("own_ray") or "ray_disconnected" in fixtures
        if "ray_cluster" in fixtures or (item.get_closest_marker("ray") and not own):
            item.add_marker(pytest.mark.xdist_group(RAY_GROUP))
    # In one process (-n 0), the tests that stop the shared instance run before those that use it,
    # which then starts once (a stable sort: every other test keeps its place).
    items.sort(key=lambda item: "ray_disconnected" not in getattr(item, "fixturenames", ()))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadGroupScheduling | None:
    """Under `--dist loadgroup`, the Ray group is the first unit handed out, so it starts at once.

    xdist hands out the groups with the most tests first, and the Ray group, the longest unit by
    time, has fewer tests than the docs' or the CLI errors' many quick ones: it would start only
    when one of those was done, and the suite end with one worker still on it and the other idle.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class RayGroupFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node: WorkerController) -> None:
            if RAY_GROUP in self.workqueue:
                self.workqueue.move_to_end(RAY_GROUP, last=False)
            super()._assign_work_unit(node)

    return RayGroupFirst(config, log)

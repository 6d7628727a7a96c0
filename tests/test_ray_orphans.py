"""A local Ray instance that rlrun started dies with its driver, even when the driver is SIGKILLed.

`kill -9` runs no cleanup in the driver, so Ray's shutdown never happens: what is left
of the instance must go without the driver's help (issue 23, item 4).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import RLRUN
from test_ray_cli import cli_env, process_tree, wait_for

from rlrun.cluster.local import FATE_VAR, marked_processes

GRACE_S = 30
# The main thread ends, another goes on: the process shows as a zombie and /proc hides its environ,
# as with Ray's agents that hang on their way out.
HALF_EXITED = ("import ctypes, threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); "
               "ctypes.CDLL(None).pthread_exit(None)")


def left_over(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still in the process table: a zombie counts until its parent (or init) has reaped it."""
    return [p for p in processes if p.is_running()]


@pytest.mark.ray
@pytest.mark.own_ray
def test_sigkilled_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    """Every process of the run's tree (GCS, raylet, agents, actors) is gone within 30 s of `kill -9` of the driver."""
    run_dir = tmp_path / "run"
    # One env runner and one learner actor: actors enough to leave behind, each one more process to start.
    cmd = [RLRUN, "env_runners.num=1", "learners.num=1", "stop.iterations=1000", "algo.train_batch_size=128",
           "algo.minibatch_size=64", "algo.num_epochs=1", f"hydra.run.dir={run_dir}", "logger.console=plain"]
    # Its own session, as a terminal job would be: the kill below reaches the driver alone, never the test.
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env=cli_env(), start_new_session=True)
    tree: list[psutil.Process] = []
    try:
        # One iteration recorded: the runner and learner actors exist, and so do Ray's agents.
        wait_for(lambda: (run_dir / "metrics.jsonl").is_file(), driver)
        tree = process_tree(driver.pid)
        names = {p.name() for p in tree}
        assert {"raylet", "gcs_server"} <= names and any("Agent" in n for n in names), names
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        deadline = time.monotonic() + GRACE_S
        while left_over(tree) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [(p.pid, _describe(p)) for p in left_over(tree)]
        assert not left, f"{GRACE_S} s after kill -9 of the driver, its Ray instance left {left}"
    finally:
        driver.kill()
        driver.wait(timeout=10)
        for p in left_over(tree):  # never leave the next tests an instance's worth of processes
            with contextlib.suppress(psutil.Error):
                os.kill(p.pid, signal.SIGKILL)


def _describe(p: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"{p.name()} ({p.status()})"
    return "?"


def test_a_process_whose_main_thread_exited_is_still_found_by_its_marker() -> None:
    marker = f"{FATE_VAR}=test-{os.getpid()}"
    name, value = marker.split("=")
    proc = subprocess.Popen([sys.executable, "-c", HALF_EXITED], env={**os.environ, name: value})
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the main thread did not exit"
            time.sleep(0.05)
        assert marked_processes(marker) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()

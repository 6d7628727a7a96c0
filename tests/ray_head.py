"""A real cluster made by `ray start --head`, as a user would, for the tests that join one.

Token authentication is on, with this machine's token in ~/.ray/auth_token
(Ray writes it on any local `ray.init`; `ray get-auth-token --generate` makes it
here if no test has). Its own RAY_TMPDIR keeps `ray.address=auto` from finding
any other Ray on the machine, and free ports keep it off other heads' defaults.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# Token mode is each process's own choice; a driver must make it without help from the test's environment.
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@dataclass
class Head:
    address: str  # 127.0.0.1:<port>
    port: int
    tmpdir: str  # the head's RAY_TMPDIR: a driver with it set finds the head with ray.address=auto


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def driver_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a process that joins the head: no auth settings but what `extra` gives."""
    env = {k: v for k, v in (base or os.environ).items() if k not in AUTH_VARS}
    return {**env, **extra}


@contextlib.contextmanager
def ray_head(num_cpus: int, env: dict[str, str] | None = None) -> Iterator[Head]:
    """Run `ray start --head --block` until the block ends; then check that none of its processes is left."""
    subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True,
                   env=driver_env(env))
    port = free_port()
    tmpdir = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = _ray_start(["--head", f"--port={port}", "--include-dashboard=false",
                       f"--ray-client-server-port={free_port()}"], num_cpus, Path(tmpdir) / "head.log", tmpdir, env)
    try:
        yield Head(address=f"127.0.0.1:{port}", port=port, tmpdir=tmpdir)
    finally:
        tree = process_tree(head.pid)
        # `ray start` alone: it drains the node through its GCS, then stops its processes. Signalling the whole
        # process group would stop the GCS first, and the drain would wait 30 s for it.
        head.send_signal(signal.SIGTERM)
        head.wait(timeout=60)
        _, alive = psutil.wait_procs(tree, timeout=30)
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert not alive, f"processes of the head outlived it: {[p.pid for p in alive]}"


def _ray_start(args: list[str], num_cpus: int, log: Path, tmpdir: str,
               env: dict[str, str] | None) -> subprocess.Popen:
    """`ray start --block <args>` on free ports of its own, logging to `log`, once it says the runtime started."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [RAY, "start", "--block", *args, f"--num-cpus={num_cpus}", f"--dashboard-agent-listen-port={free_port()}",
             f"--metrics-export-port={free_port()}", "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=driver_env(env, RAY_AUTH_MODE="token", RAY_TMPDIR=tmpdir),
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            for child in process_tree(proc.pid):
                child.kill()
            raise AssertionError(f"ray start failed:\n{log.read_text()}")
        time.sleep(0.2)
    return proc


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (none if it has exited)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def reconnect(head: Head, env: dict[str, str] | None = None) -> float:
    """Join the head from a fresh driver and return its CPU count: proof that it still serves drivers."""
    code = (f"import ray; ray.init(address={head.address!r}, log_to_driver=False); "
            "print(ray.cluster_resources()['CPU']); ray.shutdown()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=driver_env(env, RAY_AUTH_MODE="token"))
    assert done.returncode == 0, done.stderr
    return float(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def ray_worker_node(head: Head, num_cpus: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A second node of the head's cluster on this machine: `ray start --address=<head> --block`, a raylet of its own
    on free ports. Stopped afterwards unless it is already gone (a test that kills its raylet loses the node)."""
    node = _ray_start([f"--address={head.address}", f"--node-manager-port={free_port()}",
                       f"--object-manager-port={free_port()}", f"--runtime-env-agent-port={free_port()}"],
                      num_cpus, Path(head.tmpdir) / f"node-{free_port()}.log", head.tmpdir, env)
    try:
        yield node
    finally:
        tree = process_tree(node.pid)
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=60)
        for proc in psutil.wait_procs(tree, timeout=30)[1]:
            proc.kill()


def raylet(node: subprocess.Popen) -> psutil.Process:
    """The raylet `ray start` started for a node: killing it loses the node and every actor on it."""
    return next(p for p in process_tree(node.pid) if p.name() == "raylet")

"""A Ray instance of rlrun's own: sized for the run, reachable from this machine only.

A run that starts Ray is local by design, so nothing of it listens beyond
loopback: the GCS, the raylet, the runtime-env agent, every worker and the
dashboard (if asked for) bind 127.0.0.1.

The instance also shares its driver's fate. Ray ties the GCS and the raylet to
the driver (the kernel kills them when it dies), but not the raylet's agents,
and those hang on their way out once the GCS is gone: after `kill -9` of the
driver they lingered for minutes. So, on Linux, a reaper process waits for the
driver to end and then kills every process of the instance: the ones started
while a marker was in the driver's environment, which each process inherits,
and all their descendants. The reaper keeps a list of them while the driver
lives, because a marker alone cannot be relied on: a Python process that sets
its title (`ray::DashboardAgent`) may overwrite the memory /proc shows as its
environment.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlrun.cluster.base import ClusterError, ray_init

LOOPBACK = "127.0.0.1"
FATE_VAR = "RLRUN_RAY_FATE"  # the marker: every process of a local instance has it, with the instance's own value
REAP_TIMEOUT_S = 10.0
TRACK_INTERVAL_S = 0.5  # how often the reaper updates its list of the instance's processes while the driver lives

_reaper: subprocess.Popen | None = None  # of the one local instance this process may have


def start_local_instance(need_cpus: float, num_cpus: int | None, num_gpus: int | None, dashboard: bool) -> Any:
    """Start a new instance big enough for the run; returns Ray's context.

    CPUs default to what the run reserves (`need_cpus`), at least this
    machine's cores: Ray's CPUs are scheduling slots, so on a small machine a
    run may reserve more than it has cores. GPUs default to Ray's detection.
    """
    if dashboard:
        _check_dashboard_installed()
    cpus = num_cpus if num_cpus is not None else max(os.cpu_count() or 1, math.ceil(need_cpus))
    global _reaper
    _stop_reaper()  # Ray runs one instance per process: the last one is shut down, its reaper may sweep
    marker = f"{FATE_VAR}={uuid.uuid4().hex}"
    _reaper = _start_reaper(marker)
    try:
        with _single_machine_mode(), _marked_environment(marker):
            # address="local": a new instance even when `ray start` or RAY_ADDRESS left one for ray.init() to find.
            return ray_init(address="local", _node_ip_address=LOOPBACK, num_cpus=cpus, num_gpus=num_gpus,
                            include_dashboard=dashboard, dashboard_host=LOOPBACK)
    except BaseException:
        _stop_reaper()  # whatever a failed start left running goes too
        raise


@contextlib.contextmanager
def _single_machine_mode() -> Iterator[None]:
    """Ray's single-machine mode (its default on macOS and Windows), while Ray starts the node.

    Elsewhere Ray replaces a loopback `_node_ip_address` with the machine's
    outward IP, and its servers bind every interface unless the node's IP is
    loopback. Ray reads this switch only while it starts the node (later lookups
    ask the node itself), so it is on for that call only and a cluster joined
    later in the same process is unaffected.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _check_dashboard_installed() -> None:
    """Ray's minimal install has no dashboard; say so in one line instead of Ray's multi-line log and exception."""
    try:
        import ray.dashboard.optional_deps  # noqa: F401  (what Ray itself imports to decide)
    except ImportError as e:
        raise ClusterError(
            f"ray.dashboard=true needs Ray's dashboard packages, which are not installed ({e}): "
            "pip install 'ray[default]', or leave ray.dashboard=false"
        ) from None


def stop_local_instance() -> None:
    """Shut the instance down, then have the reaper kill what Ray's shutdown left behind (agents on their way out)."""
    import ray

    try:
        ray.shutdown()
    finally:
        _stop_reaper()


def _start_reaper(marker: str) -> subprocess.Popen | None:
    """A process that kills the instance's processes once this one ends or closes the pipe to it (Linux only).

    Its own session keeps a Ctrl-C or a signal to the driver's process group from
    stopping it before it has done its work; the pipe's write end stays in this
    process alone (not inheritable), so end of file means this process is gone.
    """
    if not sys.platform.startswith("linux"):
        return None
    # rlrun importable there as here, even when only this process's sys.path has it (a checkout, not installed).
    pythonpath = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", f"from rlrun.cluster.local import reap; reap({marker!r})"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": pythonpath})


def _stop_reaper() -> None:
    """Close the pipe: the reaper sweeps and exits; wait for it so nothing is left when this returns."""
    global _reaper
    if _reaper is None:
        return
    reaper, _reaper = _reaper, None
    reaper.stdin.close()
    try:
        reaper.wait(timeout=REAP_TIMEOUT_S + 5)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


@contextlib.contextmanager
def _marked_environment(marker: str) -> Iterator[None]:
    """The marker in os.environ while Ray starts the node: its processes, and everything they start, inherit it.

    Only then: the driver's later children (a subprocess of an env, say) are not the instance's.
    """
    name, value = marker.split("=", 1)
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def reap(marker: str) -> None:
    """The reaper's body: until end of file on stdin, keep the list of the instance's processes up to date;
    then SIGKILL them (and any they started meanwhile) until none is left."""
    instance: dict[int, int] = {}  # pid -> start time (a pid the kernel reuses is another process)
    while not _end_of_file(sys.stdin.fileno(), timeout=TRACK_INTERVAL_S):
        instance = instance_processes(marker, instance)
    deadline = time.monotonic() + REAP_TIMEOUT_S
    while (instance := instance_processes(marker, instance)) and time.monotonic() < deadline:
        for pid in instance:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def instance_processes(marker: str, known: dict[int, int]) -> dict[int, int]:
    """The instance's live processes (pid -> start time): those marked, those in `known` that still run, and
    every descendant of either (an agent or worker the raylet started, even one whose environ was overwritten)."""
    table = {pid: stat for pid in _pids() if (stat := _stat(pid)) is not None}  # pid -> (ppid, start time)
    roots = {pid for pid in marked_processes(marker) if pid in table}
    roots |= {pid for pid, start in known.items() if pid in table and table[pid][1] == start}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found and pid != os.getpid():
            found.add(pid)
            todo.extend(children.get(pid, []))
    return {pid: table[pid][1] for pid in found}


def _end_of_file(fd: int, timeout: float) -> bool:
    """Whether `fd` reached end of file within `timeout` seconds (the driver holds the pipe's only write end)."""
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable) and os.read(fd, 4096) == b""


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) from /proc/<pid>/stat; None once the process is gone."""
    text = _read(Path("/proc") / str(pid) / "stat").decode(errors="replace")
    if not text:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold spaces and parentheses
    return int(fields[1]), int(fields[19])


def marked_processes(marker: str) -> list[int]:
    """Pids of the processes whose environment holds `marker` (NAME=value), this one excepted."""
    wanted = marker.encode()
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != os.getpid()
            and wanted in _environ(entry).split(b"\0")]


def _environ(process: Path) -> bytes:
    """A process's environment as /proc shows it; b"" once it is gone or not ours.

    A process whose main thread has exited while others still run (how Ray's agents
    hang) shows no environ of its own, but its threads still show theirs.
    """
    if env := _read(process / "environ"):
        return env
    with contextlib.suppress(OSError):
        return next((env for task in (process / "task").iterdir() if (env := _read(task / "environ"))), b"")
    return b""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # exited meanwhile (or a zombie main thread), or not ours
        return b""

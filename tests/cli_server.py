"""The tests' runs of rlrun's console scripts, forked from a process that has imported torch and rlrun once.

A fresh `rlrun` process spends about 3.7 s of CPU before it does anything a test looks at: importing
torch (1.1 s), `torch._dynamo` (1.3 s; `Optimizer.step` imports it), matplotlib for the learning-curve
plot, Hydra and rlrun. The suite starts hundreds of such processes on two cores, so this was the
largest part of `make test`. Each pytest process therefore starts one fork server (this file, run as a
script) that imports those modules (tests/cli_preload.py) and then forks a child per request; a
`subprocess.run` of `rlrun`, `rlrun-eval` or `rlrun-report` in the tests becomes such a child, which
runs the console script's entry point as the script would:

- its own process (pid, exit status, signals: a timeout kills it and raises `TimeoutExpired`), its
  own working directory and environment, stdin from /dev/null;
- `sys.argv` as the script's; `sys.path` as a fresh interpreter's for the script (its bin folder,
  then PYTHONPATH, then the site folders), not the server's;
- stdout and stderr to files read back into the `CompletedProcess` (text or bytes, as asked), stderr
  merged into stdout for `stderr=subprocess.STDOUT`;
- a `SystemExit` ends it with its code, an uncaught exception prints its traceback and exits 1,
  non-daemon threads are joined and `atexit` handlers run, as at an interpreter's exit.

What this cannot reproduce runs as a real exec instead: an environment that differs from the server's
in a variable that may be read when the preloaded modules are imported (any not in
`RUNTIME_ENV_PREFIXES`), output that is not captured, stdin input, any other `subprocess.run`
argument. `Popen` (the tests that signal a run) is never served. `RLRUN_TESTS_FRESH_PROCESSES=1` turns
the server off, so every run is a fresh exec.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import locale
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
SCRIPTS = {str(BIN / name): name for name in ("rlrun", "rlrun-eval", "rlrun-report")}
# Variables read when a run uses them, by code the server has not imported (rlrun's own, Ray, MLflow, W&B,
# MuJoCo's GL choice, Rich's console), and pytest's own: a run whose environment differs from the server's
# only in these is served.
RUNTIME_ENV_PREFIXES = ("RLRUN_", "PYTEST_", "RAY_", "MLFLOW_", "WANDB_", "MUJOCO_GL", "PYOPENGL_PLATFORM",
                        "PYTHONUNBUFFERED", "PYTHONPATH", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")
SERVED_KWARGS = {"capture_output", "stdout", "stderr", "text", "universal_newlines", "timeout", "cwd", "env",
                 "check"}
REAP_INTERVAL_S = 0.02

_real_run = subprocess.run


# ---- the client side, in the test process ----

class _Client:
    """One fork server for this process, started on the first served run."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.tmp = tempfile.TemporaryDirectory(prefix="rlrun-cli-server-")
        self.address = os.path.join(self.tmp.name, "socket")
        self.log = Path(self.tmp.name, "server.log")
        with self.log.open("wb") as log:
            # stdin stays a pipe from this process: the server exits when it closes. No PYTHONPATH, so that
            # the server's sys.path is a fresh interpreter's (each child adds its own PYTHONPATH).
            env = {k: v for k, v in self.env.items() if k != "PYTHONPATH"}
            self.server = subprocess.Popen([sys.executable, __file__, self.address], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=log, env=env)
        assert self.server.stdout is not None
        ready = self.server.stdout.readline()
        if not ready:
            raise RuntimeError(f"the tests' CLI fork server did not start:\n{self.log.read_text()}")
        # What importing the preloaded modules set in the server's environment: a fresh exec would set it too.
        self.imported_env: dict[str, str] = json.loads(ready)["imported_env"]

    def run(self, cmd: list[str], cwd: str, env: dict[str, str], out: str, err: str | None,
            timeout: float | None) -> int | None:
        """Run `cmd` in a forked child; its exit status, or None when it was killed at `timeout`."""
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(self.address)
            conn.sendall(json.dumps({"cmd": cmd, "cwd": cwd, "env": env, "out": out, "err": err}).encode() + b"\n")
            replies = _Lines(conn)
            pid = json.loads(replies.next(None))["pid"]
            try:
                return json.loads(replies.next(timeout))["status"]
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                replies.next(None)  # the server reaped it
                return None

    def close(self) -> None:
        assert self.server.stdin is not None
        self.server.stdin.close()
        self.server.wait(timeout=30)
        self.tmp.cleanup()


class _Lines:
    """The server's replies on one connection, a line at a time, each within a timeout (None: no limit)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            self.conn.settimeout(None if deadline is None else max(deadline - time.monotonic(), 1e-3))
            chunk = self.conn.recv(4096)  # TimeoutError past the deadline
            if not chunk:
                raise ConnectionError("the tests' CLI fork server closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


_client: list[_Client] = []


def start() -> Callable[[], None]:
    """Serve this process's `subprocess.run` of rlrun's scripts from a fork server; returns the undo."""
    if os.environ.get("RLRUN_TESTS_FRESH_PROCESSES") == "1":
        return lambda: None
    subprocess.run = _run  # type: ignore[assignment]

    def undo() -> None:
        subprocess.run = _real_run  # type: ignore[assignment]
        if _client:
            _client.pop().close()

    return undo


def _servable(cmd: Any, kwargs: dict[str, Any], server_env: dict[str, str], imported_env: dict[str, str]) -> bool:
    if not isinstance(cmd, list | tuple) or not cmd or str(cmd[0]) not in SCRIPTS or set(kwargs) - SERVED_KWARGS:
        return False
    if not (kwargs.get("capture_output") or (kwargs.get("stdout") == subprocess.PIPE
                                             and kwargs.get("stderr") in (subprocess.PIPE, subprocess.STDOUT))):
        return False
    env = kwargs.get("env") or os.environ
    changed = {k for k in env.keys() | server_env.keys() if env.get(k) != server_env.get(k)}
    return all(k.startswith(RUNTIME_ENV_PREFIXES) or env.get(k, imported_env.get(k)) == imported_env.get(k)
               for k in changed)


def _run(cmd: Any, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
    """`subprocess.run`, serving rlrun's scripts from the fork server where it can (module docstring)."""
    if args or not _servable(cmd, kwargs, *((_client[0].env, _client[0].imported_env) if _client
                                            else (dict(os.environ), {}))):
        return _real_run(cmd, *args, **kwargs)
    if not _client:
        _client.append(_Client())
        if not _servable(cmd, kwargs, _client[0].env, _client[0].imported_env):
            return _real_run(cmd, *args, **kwargs)
    cmd = [str(part) for part in cmd]
    merge = kwargs.get("stderr") == subprocess.STDOUT
    with tempfile.TemporaryDirectory(prefix="rlrun-cli-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        status = _client[0].run(cmd, str(kwargs.get("cwd") or os.getcwd()), dict(kwargs.get("env") or os.environ),
                                str(out), None if merge else str(err), kwargs.get("timeout"))
        stdout, stderr = out.read_bytes(), (b"" if merge else err.read_bytes())
    if kwargs.get("text") or kwargs.get("universal_newlines"):
        encoding = locale.getpreferredencoding(False)
        stdout, stderr = (stream.decode(encoding).replace("\r\n", "\n") for stream in (stdout, stderr))
    if status is None:
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"], output=stdout, stderr=None if merge else stderr)
    result = subprocess.CompletedProcess(cmd, status, stdout, None if merge else stderr)
    if kwargs.get("check"):
        result.check_returncode()
    return result


# ---- the server, run as a script ----

def _serve(address: str) -> None:
    """Preload, then fork one child per request; reply with its pid, then with its exit status."""
    before = dict(os.environ)
    import cli_preload  # noqa: F401  (tests/ is this script's folder, so sys.path[0])

    imported_env = {k: v for k, v in os.environ.items() if before.get(k) != v}
    fresh_sys_path = sys.path[1:]  # what a fresh interpreter has after the script's own folder
    # The preloaded modules' objects live as long as any child: frozen, a child's garbage collections skip them
    # (each full collection walked all of torch's, about half the CPU of a short served run) and the child's pages
    # stay shared. rlrun collects and freezes at its own exit anyway (rlrun/cli.py).
    gc.collect()
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    listener.listen(16)
    print(json.dumps({"imported_env": imported_env}), flush=True)
    waiting: dict[int, socket.socket] = {}  # child pid -> the connection its status goes to
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], REAP_INTERVAL_S)
        if sys.stdin in readable and not sys.stdin.buffer.read1(1):
            return  # the test process is gone or done
        if listener in readable:
            conn, _ = listener.accept()
            request = json.loads(conn.makefile("rb").readline())
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                for other in waiting.values():
                    other.close()
                _become(fresh_sys_path, imported_env, **request)
            waiting[pid] = conn
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        while waiting:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = waiting.pop(pid)
            with contextlib.suppress(OSError):  # a client killed at its own timeout
                conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
            conn.close()


def _become(fresh_sys_path: list[str], imported_env: dict[str, str], cmd: list[str], cwd: str, env: dict[str, str],
            out: str, err: str | None) -> None:
    """In the forked child: run `cmd`'s entry point as its script would (module docstring), then exit."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(imported_env | env)  # as the script's own imports would have set them
    sys.path[:] = [str(BIN), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *fresh_sys_path]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, path in ((1, out), (2, err)):
        if path is None:  # stderr merged into stdout
            os.dup2(1, 2)
            continue
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    encoding = locale.getpreferredencoding(False)
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding=encoding, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding=encoding, errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    sys.argv = list(cmd)
    (entry,) = entry_points(group="console_scripts", name=SCRIPTS[cmd[0]])
    code = 0
    try:
        entry.load()()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # an uncaught exception: the interpreter prints it and exits 1
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads, as the interpreter does
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1])

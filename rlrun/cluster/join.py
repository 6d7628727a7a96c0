"""Joining a running Ray cluster (`ray.address=auto` or `host:port`): reachable, authenticated, quiet.

A plain `ray.init(address=...)` fails badly in three common cases, each handled here:

- Nothing listens at the address: Ray retries for minutes. A TCP connect first
  answers within CONNECT_TIMEOUT_S.
- The cluster uses token authentication (Ray 2.60 turns it on wherever a token
  exists, e.g. after any local `ray.init` wrote ~/.ray/auth_token): Ray sends
  this machine's token only when joining `auto`. rlrun sends it to the address
  the user named as well, so joining a `ray start` cluster just works; a
  cluster that refuses (no token here, or another one) ends in one line that
  names the cause and the fix.
- Ray's C++ core writes a warning per failed attempt straight to stderr, past
  Python's logging, for 20 attempts. Those go nowhere, and a refusal is final
  after JOIN_ATTEMPTS.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlrun.cluster.base import ClusterError, ray_init, silence_token_notice

CONNECT_TIMEOUT_S = 5.0
# Attempts, one a second, to get past a GCS that answers but refuses the driver (Ray's default: 20).
JOIN_ATTEMPTS = 5
_ATTEMPTS_VAR = "RAY_gcs_server_port_wait_time_s"
_AUTH_MODE_VAR = "RAY_AUTH_MODE"
_TOKEN_FIX = ("copy the cluster's token (`ray get-auth-token` on its head node prints it) to ~/.ray/auth_token "
              "or set RAY_AUTH_TOKEN")


def join_cluster(address: str) -> Any:
    """Connect this driver to the cluster at `address`; returns Ray's context or raises a one-line ClusterError."""
    from ray.exceptions import RayError

    if address != "auto":
        check_reachable(address)
    token_mode = _send_token_if_available()
    try:
        with _stderr_discarded(), _env_default(_ATTEMPTS_VAR, str(JOIN_ATTEMPTS)):
            return ray_init(address=address)
    except (ConnectionError, ValueError, RuntimeError, RayError) as e:
        raise ClusterError(f"could not join ray.address={address}: {_reason(e, token_mode)}") from None


def check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing accepts connections at `address`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"ray.address must be auto or host:port, e.g. 10.0.0.5:6379 (got {address!r}); "
                           "leave it null to start a local instance")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise ClusterError(
            f"could not join ray.address={address}: nothing answers there ({e.strerror or e}); start a cluster "
            f"with `ray start --head --port={port}` or correct ray.address"
        ) from None


def token_source() -> str | None:
    """Where Ray would read this machine's token from (Ray's order), or None if there is no token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return str(path) if path.is_file() and path.stat().st_size else None


def _send_token_if_available() -> bool:
    """Token mode for this driver if this machine has a token and RAY_AUTH_MODE leaves it to Ray; True if on.

    What Ray does by itself for `address=auto`; a cluster without token
    authentication ignores the token.
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    silence_token_notice()
    return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _reason(error: BaseException, token_mode: bool) -> str:
    """The cause, in words a user can act on; Ray's own message buries it in a traceback's last line."""
    chain = [error]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    if any(type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e) for e in chain):
        return _auth_reason(token_mode)
    lines = [line.strip() for line in str(chain[-1]).splitlines() if line.strip()]
    return lines[-1] if lines else type(chain[-1]).__name__


def _auth_reason(token_mode: bool) -> str:
    source = token_source()
    if token_mode and source:
        return f"the cluster refused this machine's Ray token (from {source}); {_TOKEN_FIX}"
    mode = os.environ.get(_AUTH_MODE_VAR, "")
    if mode.lower() not in ("", "token"):
        return (f"the cluster requires token authentication, which {_AUTH_MODE_VAR}={mode} turns off here; "
                f"unset {_AUTH_MODE_VAR}")
    return f"the cluster requires token authentication and this machine has no token; {_TOKEN_FIX}"


@contextlib.contextmanager
def _stderr_discarded() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Ray's C++ core writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _env_default(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration, unless the user has set it."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        del os.environ[name]

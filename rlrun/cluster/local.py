"""A Ray instance of rlrun's own: sized for the run, reachable from this machine only.

A run that starts Ray is local by design, so nothing of it listens beyond
loopback: the GCS, the raylet, the runtime-env agent, every worker and the
dashboard (if asked for) bind 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

from rlrun.cluster.base import ClusterError, ray_init

LOOPBACK = "127.0.0.1"


def start_local_instance(need_cpus: float, num_cpus: int | None, num_gpus: int | None, dashboard: bool) -> Any:
    """Start a new instance big enough for the run; returns Ray's context.

    CPUs default to what the run reserves (`need_cpus`), at least this
    machine's cores: Ray's CPUs are scheduling slots, so on a small machine a
    run may reserve more than it has cores. GPUs default to Ray's detection.
    """
    if dashboard:
        _check_dashboard_installed()
    cpus = num_cpus if num_cpus is not None else max(os.cpu_count() or 1, math.ceil(need_cpus))
    with _single_machine_mode():
        # address="local": a new instance even when `ray start` or RAY_ADDRESS left one for ray.init() to find.
        return ray_init(address="local", _node_ip_address=LOOPBACK, num_cpus=cpus, num_gpus=num_gpus,
                        include_dashboard=dashboard, dashboard_host=LOOPBACK)


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

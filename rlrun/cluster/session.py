"""One run's Ray session: start a local instance or join a cluster, check it can host the run, leave it.

Embedded runs (no actors, no `ray.address`) never import Ray. A run that starts
a local instance shuts it down on every exit path (normal end, error, Ctrl-C);
a run that joined a cluster only disconnects from it. Resources are checked
against the cluster's totals up front, so asking for 4 GPUs on a CPU cluster is
one clear line instead of a placement group that waits forever.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlrun.config.errors import ConfigError

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

log = logging.getLogger("rlrun")


class ClusterError(ConfigError):
    """The Ray cluster cannot be reached or cannot host what the config asks for."""


@dataclass
class ClusterInfo:
    """Where a run executes: embedded (no Ray) or a Ray cluster at `address`."""

    address: str | None = None
    num_cpus: float = 0.0
    num_gpus: float = 0.0

    def describe(self, config: AlgorithmConfig) -> str:
        """The layout line the console shows at start: runners, learners, devices."""
        local_learner = f"1 local learner ({'cuda' if config.num_gpus_per_learner else 'cpu'})"
        if self.address is None:
            return f"embedded mode: 1 local env runner, {local_learner}, no Ray"
        runners = (
            f"{_count(config.num_env_runners, 'env runner')} x {config.num_envs_per_env_runner} envs "
            f"({config.num_cpus_per_env_runner:g} CPU each)"
            if config.num_env_runners
            else "1 local env runner"
        )
        if config.num_learners:
            device = f"{config.num_gpus_per_learner:g} GPU each" if config.num_gpus_per_learner else "cpu"
            learners = (f"{config.num_learners} DDP learners ({device}, {ddp_backend(config)})"
                        if config.num_learners > 1 else f"1 learner actor ({device})")
        else:
            learners = local_learner
        return (f"Ray cluster {self.address} ({self.num_cpus:g} CPUs, {self.num_gpus:g} GPUs): "
                f"{runners}, {learners}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def ddp_backend(config: AlgorithmConfig) -> str:
    """nccl when every learner owns at least one whole GPU; gloo otherwise (CPU or shared GPUs)."""
    return "nccl" if config.num_gpus_per_learner >= 1 else "gloo"


def uses_ray(ray_cfg: Any, config: AlgorithmConfig) -> bool:
    return bool(config.num_env_runners or config.num_learners or ray_cfg.address)


def required_resources(config: AlgorithmConfig) -> dict[str, float]:
    """CPUs and GPUs the run's actors reserve (the driver itself reserves none)."""
    return {
        "CPU": config.num_env_runners * config.num_cpus_per_env_runner
        + config.num_learners * config.num_cpus_per_learner,
        "GPU": config.num_learners * config.num_gpus_per_learner,
    }


@contextlib.contextmanager
def cluster_session(ray_cfg: Any, config: AlgorithmConfig) -> Iterator[ClusterInfo]:
    """Start or join Ray if the run needs it; always leave it again on the way out."""
    if not uses_ray(ray_cfg, config):
        yield ClusterInfo()
        return
    import ray

    try:
        context = ray.init(**_init_kwargs(config, ray_cfg.address, ray_cfg.num_cpus, ray_cfg.num_gpus,
                                          ray_cfg.dashboard))
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"ray.address={ray_cfg.address}" if ray_cfg.address else "a local Ray instance"
        raise ClusterError(f"could not start or join {where}: {_root_cause(e)}") from None
    try:
        info = ClusterInfo(address=context.address_info.get("address") or ray_cfg.address or "local",
                           **_totals(ray.cluster_resources()))
        check_resources(info, config)
        log.info("%s", info.describe(config))
        yield info
    finally:
        ray.shutdown()  # stops a local instance; only disconnects from a joined cluster


def _root_cause(error: BaseException) -> str:
    """Ray wraps the reason (e.g. a missing auth token) in generic connection errors; name the reason."""
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error).strip().splitlines()[0]


def _totals(resources: dict[str, float]) -> dict[str, float]:
    return {"num_cpus": resources.get("CPU", 0.0), "num_gpus": resources.get("GPU", 0.0)}


def _init_kwargs(
    config: AlgorithmConfig, address: str | None, num_cpus: int | None, num_gpus: int | None, dashboard: bool
) -> dict[str, Any]:
    """`ray.init` arguments: join `address`, or start an instance big enough for the run."""
    # Ray announces on every start that token authentication is on (it is); keep that out of the console.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        return {**kwargs, "address": address}
    need = required_resources(config)
    # Ray's CPUs are scheduling slots: on a small machine a run may reserve more than it has cores.
    cpus = num_cpus if num_cpus is not None else max(os.cpu_count() or 1, math.ceil(need["CPU"]))
    # address="local": a new instance even when `ray start` or RAY_ADDRESS left one for ray.init() to find.
    return {**kwargs, "address": "local", "num_cpus": cpus, "num_gpus": num_gpus, "include_dashboard": dashboard}


def check_resources(info: ClusterInfo, config: AlgorithmConfig) -> None:
    """Fail fast, naming the keys to change, when the whole cluster has less than the run reserves."""
    need = required_resources(config)
    if need["GPU"] > info.num_gpus:
        raise ClusterError(
            f"learners.num={config.num_learners} x learners.num_gpus_per_learner={config.num_gpus_per_learner:g} "
            f"needs {need['GPU']:g} GPUs but the Ray cluster at {info.address} has {info.num_gpus:g}; lower them "
            "or join a cluster with GPUs (ray.address=...)"
        )
    if need["CPU"] > info.num_cpus:
        raise ClusterError(
            f"env_runners.num={config.num_env_runners} x env_runners.num_cpus_per_env_runner="
            f"{config.num_cpus_per_env_runner:g} + learners.num={config.num_learners} x "
            f"learners.num_cpus_per_learner={config.num_cpus_per_learner:g} needs {need['CPU']:g} CPUs but the "
            f"Ray cluster at {info.address} has {info.num_cpus:g}; lower them or set ray.num_cpus"
        )


def ensure_ray(config: AlgorithmConfig) -> None:
    """For Python API users who build remote groups without a session: start Ray like RLlib would.

    The instance lives until `ray.shutdown()` or the end of the process.
    """
    import ray

    if not ray.is_initialized():
        ray.init(**_init_kwargs(config, None, None, None, False))
    check_resources(ClusterInfo(address="local", **_totals(ray.cluster_resources())), config)

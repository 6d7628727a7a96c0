"""One run's Ray session: start a local instance or join a cluster, check it can host the run, leave it.

Embedded runs (no actors, no `ray.address`) never import Ray. A run that starts
a local instance shuts it down on every exit path (normal end, error, Ctrl-C);
a run that joined a cluster only disconnects from it. A local instance listens
on loopback only (see `local`); joining is explained in `join`. Resources are checked
against the cluster's totals up front, so asking for 4 GPUs on a CPU cluster is
one clear line instead of a placement group that waits forever.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlrun.cluster.base import ClusterError
from rlrun.cluster.join import join_cluster
from rlrun.cluster.local import start_local_instance, stop_local_instance

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

log = logging.getLogger("rlrun")


@dataclass(frozen=True)
class RunResources:
    """What a run's actors reserve on Ray: env-runner and learner actors and each one's CPUs and GPUs.

    `AlgorithmConfig.run_resources()` gives a whole run's; an EnvRunnerGroup or LearnerGroup built on its own
    starts and checks Ray for its own actors only (the other fields stay 0).
    """

    num_env_runners: int = 0
    num_cpus_per_env_runner: float = 0.0
    num_learners: int = 0
    num_cpus_per_learner: float = 0.0
    num_gpus_per_learner: float = 0.0


@dataclass
class ClusterInfo:
    """Where a run executes: embedded (no Ray), a local instance of its own, or a joined cluster at `address`."""

    address: str | None = None
    num_cpus: float = 0.0
    num_gpus: float = 0.0
    local: bool = False
    dashboard_url: str | None = None

    def describe(self, config: AlgorithmConfig) -> str:
        """The layout line the console shows at start: runners, learners, devices and torch threads."""
        threads = _count(config.learner_threads(config.observes_images()), "thread")
        local_learner = f"1 local learner ({'cuda' if config.num_gpus_per_learner else 'cpu'}, {threads})"
        if self.address is None:
            return f"embedded mode: 1 local env runner, {local_learner}, no Ray"
        runners = (
            f"{_count(config.num_env_runners, 'env runner')} x {config.num_envs_per_env_runner} envs "
            f"({config.num_cpus_per_env_runner:g} CPU, {_count(config.env_runner_threads(), 'thread')} each)"
            if config.num_env_runners
            else "1 local env runner"
        )
        if config.num_learners:
            device = f"{config.num_gpus_per_learner:g} GPU each" if config.num_gpus_per_learner else "cpu"
            backend = ddp_backend(config.num_gpus_per_learner)
            learners = (f"{config.num_learners} DDP learners ({device}, {threads} each, {backend})"
                        if config.num_learners > 1 else f"1 learner actor ({device}, {threads})")
        else:
            learners = local_learner
        resources = f"{self.num_cpus:g} CPUs, {self.num_gpus:g} GPUs"
        if self.dashboard_url:
            resources += f", dashboard http://{self.dashboard_url}"
        where = (f"Ray local instance {self.address} (loopback only, {resources})" if self.local
                 else f"Ray cluster {self.address} ({resources})")
        return f"{where}: {runners}, {learners}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def ddp_backend(num_gpus_per_learner: float) -> str:
    """nccl when every learner owns at least one whole GPU; gloo otherwise (CPU or shared GPUs)."""
    return "nccl" if num_gpus_per_learner >= 1 else "gloo"


def uses_ray(ray_cfg: Any, config: AlgorithmConfig) -> bool:
    return bool(config.num_env_runners or config.num_learners or ray_cfg.address)


def required_resources(resources: RunResources) -> dict[str, float]:
    """CPUs and GPUs the run's actors reserve (the driver itself reserves none)."""
    return {
        "CPU": resources.num_env_runners * resources.num_cpus_per_env_runner
        + resources.num_learners * resources.num_cpus_per_learner,
        "GPU": resources.num_learners * resources.num_gpus_per_learner,
    }


@contextlib.contextmanager
def cluster_session(ray_cfg: Any, config: AlgorithmConfig) -> Iterator[ClusterInfo]:
    """Start or join Ray if the run needs it; always leave it again on the way out."""
    if not uses_ray(ray_cfg, config):
        yield ClusterInfo()
        return
    import ray

    with _connection(ray_cfg, config) as (address, local, dashboard_url):
        info = ClusterInfo(address=address, local=local, dashboard_url=dashboard_url,
                           **_totals(ray.cluster_resources()))
        check_resources(info, config.run_resources())
        log.info("%s", info.describe(config))
        yield info


@contextlib.contextmanager
def _connection(ray_cfg: Any, config: AlgorithmConfig) -> Iterator[tuple[str, bool, str | None]]:
    """This process's link to Ray for one run: (GCS address, is it a local instance of the run's own, dashboard)."""
    import ray

    if in_ray_worker():
        # A sweep job that `hydra/launcher=ray` runs as a Ray task: its actors join the cluster the task runs
        # on, which the launcher owns and which outlives the job, so it is neither started nor stopped here.
        yield ray.get_runtime_context().gcs_address, False, None
        return
    local = not ray_cfg.address
    resources = config.run_resources()
    if local:
        check_before_starting(ray_cfg, resources)
    context = connect(ray_cfg, required_resources(resources)["CPU"])
    try:
        yield context.address_info["address"], local, context.dashboard_url or None
    finally:
        if local:
            stop_local_instance()  # Ray's shutdown, and what it leaves running goes too
        else:
            ray.shutdown()  # only disconnects from a joined cluster


def in_ray_worker() -> bool:
    """True inside a Ray task or actor, where Ray is already connected and a second instance must not start."""
    import ray

    return ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE


def connect(ray_cfg: Any, need_cpus: float) -> Any:
    """Join `ray.address`, or start a local instance with room for `need_cpus`; returns Ray's context."""
    if ray_cfg.address:
        sizing = [f"ray.{key}={getattr(ray_cfg, key)}" for key in ("num_cpus", "num_gpus")
                  if getattr(ray_cfg, key) is not None]
        if sizing:
            raise ClusterError(f"{' and '.join(sizing)} sizes a local instance and cannot be combined with "
                               f"ray.address={ray_cfg.address}: a cluster you join has the resources it was started "
                               "with; leave them null or ray.address null")
        return join_cluster(ray_cfg.address)
    try:
        return start_local_instance(need_cpus, ray_cfg.num_cpus, ray_cfg.num_gpus, ray_cfg.dashboard)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ClusterError(f"could not start a local Ray instance: {_root_cause(e)}") from None


def _root_cause(error: BaseException) -> str:
    """Ray wraps the reason in generic errors; name the reason."""
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error).strip().splitlines()[0]


def _totals(resources: dict[str, float]) -> dict[str, float]:
    return {"num_cpus": resources.get("CPU", 0.0), "num_gpus": resources.get("GPU", 0.0)}


def check_before_starting(ray_cfg: Any, resources: RunResources) -> None:
    """What a local instance will have is known before it starts, so a run it cannot host fails before Ray spends
    seconds starting: its CPUs are `ray.num_cpus` (by default it grows to fit the run), its GPUs `ray.num_gpus`,
    else the CUDA devices of this machine that torch can use (what Ray would detect; a GPU that torch cannot use
    would fail the learners anyway)."""
    need = required_resources(resources)
    num_gpus = ray_cfg.num_gpus
    if num_gpus is None and need["GPU"]:
        import torch

        num_gpus = torch.cuda.device_count()
    check_resources(ClusterInfo(local=True, num_cpus=math.inf if ray_cfg.num_cpus is None else ray_cfg.num_cpus,
                                num_gpus=math.inf if num_gpus is None else num_gpus), resources,
                    where="the local Ray instance would have")


def check_resources(info: ClusterInfo, resources: RunResources, where: str | None = None) -> None:
    """Fail fast, naming the keys to change, when the whole cluster has less than the run reserves."""
    need = required_resources(resources)
    where = where or f"the Ray cluster at {info.address} has"
    if need["GPU"] > info.num_gpus:
        raise ClusterError(
            f"learners.num={resources.num_learners} x "
            f"learners.num_gpus_per_learner={resources.num_gpus_per_learner:g} "
            f"needs {need['GPU']:g} GPUs but {where} {info.num_gpus:g}; lower them "
            "or join a cluster with GPUs (ray.address=...)"
        )
    if need["CPU"] > info.num_cpus:
        raise ClusterError(
            f"env_runners.num={resources.num_env_runners} x env_runners.num_cpus_per_env_runner="
            f"{resources.num_cpus_per_env_runner:g} + learners.num={resources.num_learners} x "
            f"learners.num_cpus_per_learner={resources.num_cpus_per_learner:g} needs {need['CPU']:g} CPUs but {where} "
            f"{info.num_cpus:g}; lower them or "
            + ("set ray.num_cpus" if info.local else "join a cluster with more CPUs")
        )


def ensure_ray(resources: RunResources) -> None:
    """For Python API users who build an algorithm or remote groups without a session: start Ray like RLlib
    would, big enough for `resources`, and check that the cluster can host them.

    The instance lives until `ray.shutdown()` or the end of the process.
    """
    import ray

    if not ray.is_initialized():
        start_local_instance(required_resources(resources)["CPU"], None, None, False)
    check_resources(ClusterInfo(address=ray.get_runtime_context().gcs_address, **_totals(ray.cluster_resources())),
                    resources)

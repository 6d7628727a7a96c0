"""`hydra/launcher=ray`: every job of a sweep batch runs as a Ray task; jobs share one cluster.

The cluster is the sweep's `ray.address`, or a local instance (loopback only) that the
launcher starts for the batch and stops at its end. Inside its task a job runs exactly as
under Hydra's basic launcher (`run_job`: same run directory, metrics, objective), and its env
runners and learners become actors of the same cluster (`rlrun.cluster.session` reuses the
task's connection instead of starting a second Ray).

Admission is counted here rather than left to placement groups: a job's learners already
reserve a placement group of their own, and Ray cannot nest one placement group inside
another. Each job reserves 1 CPU for its driver task plus what its actors need
(`required_resources`), and the next job (in sweep order) starts only while the reservations
of the running jobs and its own fit the cluster's totals. So no driver task ever holds a CPU
while its actors wait for CPUs that other drivers hold: the deadlock of a too-busy cluster
cannot happen. The count assumes the sweep has the cluster to itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from rlrun.cluster.base import ClusterError
from rlrun.cluster.session import connect, required_resources

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

log = logging.getLogger(__name__)

DRIVER_CPUS = 1.0  # the job's own process: its Ray task
RESOURCES = ("CPU", "GPU")


@dataclass
class Job:
    """One job of the batch: its number, its composed config and what it reserves on the cluster."""

    num: int
    overrides: list[str]
    config: DictConfig
    algo: AlgorithmConfig | None  # None: an invalid config; the job fails in its task and is reported as usual

    @property
    def run_dir(self) -> Path:
        return Path(self.config.hydra.sweep.dir) / str(self.config.hydra.sweep.subdir)

    @property
    def driver_gpus(self) -> float:
        """A local learner (learners.num=0) trains in the job's driver task, on a GPU if it asks for one."""
        return self.algo.num_gpus_per_learner if self.algo is not None and not self.algo.num_learners else 0.0

    @property
    def need(self) -> dict[str, float]:
        """The driver task's CPU (and local learner's GPU) plus what the job's actors reserve."""
        actors = (required_resources(self.algo.run_resources()) if self.algo is not None
                  else dict.fromkeys(RESOURCES, 0.0))
        return {"CPU": DRIVER_CPUS + actors["CPU"], "GPU": self.driver_gpus + actors["GPU"]}

    def explain(self, resource: str) -> str:
        """The keys behind `need[resource]`, for the error that says the cluster is too small."""
        a = self.algo
        if a is None:
            return "its driver task"
        if resource == "CPU":
            return (f"1 for its driver task + env_runners.num={a.num_env_runners} x "
                    f"env_runners.num_cpus_per_env_runner={a.num_cpus_per_env_runner:g} + learners.num={a.num_learners}"
                    f" x learners.num_cpus_per_learner={a.num_cpus_per_learner:g}")
        if a.num_learners:
            return f"learners.num={a.num_learners} x learners.num_gpus_per_learner={a.num_gpus_per_learner:g}"
        return f"learners.num_gpus_per_learner={a.num_gpus_per_learner:g} for the local learner in its driver task"


def launch(config: DictConfig, hydra_context: HydraContext, task_function: TaskFunction,
           job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Run the batch on the cluster; returns the jobs' results in batch order.

    Every job must fit the cluster on its own, else nothing runs (one-line ClusterError).
    A Ctrl-C cancels every running job (each writes its final checkpoint) and waits for them.
    """
    import ray

    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    jobs = [_job(config, hydra_context, initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    local = not config.ray.address
    if local and config.ray.num_cpus is not None:  # the instance's size is known: refuse a job before starting it
        _check_fits(jobs, {"CPU": float(config.ray.num_cpus)}, f"the local Ray instance (ray.num_cpus="
                    f"{config.ray.num_cpus})", "raise ray.num_cpus")
    context = connect(config.ray, max(job.need["CPU"] for job in jobs))
    try:
        address = context.address_info["address"]
        capacity = {r: float(ray.cluster_resources().get(r, 0.0)) for r in RESOURCES}
        _check_fits(jobs, capacity, f"the Ray cluster at {address}",
                    "set ray.num_cpus / ray.num_gpus" if local else "join a bigger cluster")
        Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Ray launcher: %d jobs on %s (%g CPUs, %g GPUs), sweep output dir: %s", len(jobs), address,
                 capacity["CPU"], capacity["GPU"], config.hydra.sweep.dir)
        return _run(jobs, capacity, hydra_context, task_function)
    finally:
        ray.shutdown()  # stops a local instance; only disconnects from a joined cluster


def _job(config: DictConfig, hydra_context: HydraContext, num: int, overrides: list[str]) -> Job:
    """Compose the job's config as Hydra's launchers do, and the algorithm config its reservation follows from."""
    from rlrun.algorithms.from_config import build_algorithm_config
    from rlrun.config.errors import ConfigError

    job_config = hydra_context.config_loader.load_sweep_config(config, overrides)
    with open_dict(job_config):
        job_config.hydra.job.id = f"{job_config.hydra.job.name}_{num}"
        job_config.hydra.job.num = num
    HydraConfig.instance().set_config(job_config)  # what the job's own interpolations (${hydra:...}) read
    try:
        return Job(num, overrides, job_config, build_algorithm_config(job_config))
    except ConfigError:
        return Job(num, overrides, job_config, None)


def _check_fits(jobs: list[Job], capacity: dict[str, float], where: str, fix: str) -> None:
    """A job bigger than the whole cluster would wait forever: refuse the sweep before any job starts."""
    for job in jobs:
        for resource, available in capacity.items():
            if job.need[resource] > available:
                raise ClusterError(
                    f"hydra/launcher=ray: job {job.num} ({' '.join(filter_overrides(job.overrides))}) needs "
                    f"{job.need[resource]:g} {resource}s ({job.explain(resource)}) but {where} has "
                    f"{available:g}; lower them or {fix}"
                )


def _run(jobs: list[Job], capacity: dict[str, float], hydra_context: HydraContext,
         task_function: TaskFunction) -> list[JobReturn]:
    """Start jobs in order while they fit, collect each as it ends; on Ctrl-C cancel the running ones."""
    import ray

    # max_calls=1: every job gets a fresh worker process, as separate as under the parallel launcher.
    task = ray.remote(num_cpus=DRIVER_CPUS, max_calls=1)(execute_job)
    singleton_state = Singleton.get_state()
    waiting, running = deque(jobs), {}
    in_use = dict.fromkeys(RESOURCES, 0.0)
    results: dict[int, JobReturn] = {}
    try:
        while waiting or running:
            while waiting and (not running or _fits(in_use, waiting[0].need, capacity)):
                job = waiting.popleft()
                ref = task.options(num_gpus=job.driver_gpus).remote(job.config, hydra_context, task_function,
                                                                     singleton_state)
                running[ref] = job
                in_use = {r: in_use[r] + job.need[r] for r in RESOURCES}
                log.info("\t#%d : %s", job.num, " ".join(filter_overrides(job.overrides)))
            # A timeout, so that Ctrl-C reaches this loop within a second.
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                job = running.pop(ref)
                in_use = {r: in_use[r] - job.need[r] for r in RESOURCES}
                results[job.num] = _result(ref, job)
    except KeyboardInterrupt:
        _cancel(list(running))
        raise
    return [results[job.num] for job in jobs]


def _fits(in_use: dict[str, float], need: dict[str, float], capacity: dict[str, float]) -> bool:
    return all(in_use[r] + need[r] <= capacity[r] for r in RESOURCES)


def execute_job(config: DictConfig, hydra_context: HydraContext, task_function: TaskFunction,
                singleton_state: dict[Any, Any]) -> tuple[JobReturn, str]:
    """The Ray task: one job, as Hydra's basic launcher runs it; returns its result and its failure records.

    rlrun's task function appends a failed job to the file named by FAILED_JOBS_ENV. The task may
    run on another machine, so it gets a file of its own and the launcher copies what it holds.
    """
    from rlrun.cli import FAILED_JOBS_ENV

    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(config)
    os.chdir(config.hydra.runtime.cwd)  # relative paths mean what they mean in the rlrun command
    with tempfile.TemporaryDirectory(prefix="rlrun-job-") as tmp:
        failures = Path(tmp) / "failed_jobs.jsonl"
        os.environ[FAILED_JOBS_ENV] = str(failures)
        result = run_job(hydra_context=hydra_context, config=config, task_function=task_function,
                         job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        return result, failures.read_text() if failures.exists() else ""


def _result(ref: Any, job: Job) -> JobReturn:
    """The job's result; failure records go to main()'s list, as if the job had run in this process."""
    import ray
    from ray.exceptions import RayError

    from rlrun.cli import FAILED_JOBS_ENV, _record_failed_job

    try:
        result, failures = ray.get(ref)
    except RayError as e:  # the task itself died (its worker crashed or was killed), not the job's code
        _record_failed_job(job.config.hydra, job.run_dir, e, user_error=False)
        # As rlrun's task function returns for a failed job: no objective, and the sweep goes on.
        return JobReturn(overrides=job.overrides, cfg=job.config, hydra_cfg=job.config.hydra,
                         working_dir=str(job.run_dir), task_name=job.config.hydra.job.name,
                         status=JobStatus.COMPLETED, _return_value=None)
    if failures:
        with open(os.environ[FAILED_JOBS_ENV], "a") as f:
            f.write(failures)
    return result


def _cancel(refs: list[Any]) -> None:
    """Ctrl-C: interrupt every running job (its train loop writes the final checkpoint) and wait for it."""
    import ray
    from ray.exceptions import RayError

    log.warning("interrupted: stopping %d running jobs", len(refs))
    for ref in refs:
        ray.cancel(ref)
    for ref in refs:
        with contextlib.suppress(RayError):
            ray.get(ref)

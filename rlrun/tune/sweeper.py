"""`hydra/sweeper=tune`: a study run by Ray Tune, every trial an rlrun run directory under the sweep directory.

The Hydra plugin (hydra_plugins/rlrun_tune_sweeper) only hands its settings and
the command's overrides to `run_study`. The study joins `ray.address` (or starts a
loopback-only local instance and stops it at the end), runs `num_samples` trials
of `RLrunTrainable`, as many at a time as the cluster's CPUs hold, with a
scheduler -- FIFO (every trial to its own stop criteria), ASHA (the worst trials
stopped at rungs of `grace_period * reduction_factor**k`) or PBT (every
`perturbation_interval` the bottom quantile continues a top trial's checkpoint
with perturbed parameters) -- and writes `study_summary.yaml` into the sweep
directory: the best trial (config, value, run directory) and every trial's status
("completed": it reached its stop criteria; "stopped early": by the scheduler, e.g.
at an ASHA rung or ASHA's max_t) and last iteration.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from rlrun.config.errors import ConfigError

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

log = logging.getLogger("rlrun")

SCHEDULERS = ("fifo", "asha", "pbt")
SEARCH_ALGS = ("random", "optuna")
MODES = ("max", "min")
# Metrics every iteration of a run reports (after its first episodes), usable as a study's objective.
OBJECTIVES = (
    "env_runners/episode_return_mean",
    "env_runners/episode_return_max",
    "env_runners/episode_len_mean",
    "evaluation/episode_return_mean",
)
TIME_ATTRS = ("training_iteration", "num_env_steps_sampled_lifetime", "time_total_s")
SUMMARY_FILE = "study_summary.yaml"


def run_study(sweep_config: DictConfig, arguments: list[str], settings: Mapping[str, Any]) -> None:
    """Run the study `settings` (the `hydra.sweeper` node) over rlrun composed with `arguments`."""
    _check_settings(settings)  # before Ray Tune's import (search_space), ~1.8 s
    from rlrun.algorithms.registry import get_algorithm_config_class
    from rlrun.cluster.session import required_resources
    from rlrun.tune.compose import base_config
    from rlrun.tune.search_space import search_space

    # Trials compose the config as this command did: its overrides, and the config dirs it added (custom studies).
    searchpath = list(sweep_config.hydra.searchpath)
    arguments = [*arguments, *([f"hydra.searchpath=[{','.join(searchpath)}]"] if searchpath else [])]
    base = base_config(tuple(arguments))
    config_class = get_algorithm_config_class(base.algo.name)
    space = search_space(dict(settings["params"] or {}))
    if not any(hasattr(domain, "sample") for domain in space.values()):
        raise ConfigError("hydra.sweeper.params: give at least one interval(...), range(...) or choice(...) to search")
    if settings["scheduler"]["type"] == "pbt":
        fixed_only = sorted(set(space) - {f"algo.{k}" for k in config_class.mutable_keys})
        if fixed_only:
            allowed = ", ".join(sorted(f"algo.{k}" for k in config_class.mutable_keys))
            raise ConfigError(f"PBT cannot perturb {', '.join(fixed_only)}: a trial continuing another's checkpoint "
                              f"cannot change it mid-run; algo={base.algo.name} can change {allowed}")
    first_trial = _check_trial_config(arguments, space)
    # A trial is its driver (1 CPU, the Trainable's actor) plus the env runners and learners it starts.
    per_trial = 1 + required_resources(first_trial.run_resources())["CPU"]
    # PBT compares and copies trials while they run, so its whole population runs at once; a local instance is
    # started big enough for it (Ray's CPUs are scheduling slots), a joined cluster must have them.
    population = settings["num_samples"] if settings["scheduler"]["type"] == "pbt" else 1
    sweep_dir = Path(sweep_config.hydra.sweep.dir).resolve()
    with _ray(base, need_cpus=population * per_trial) as cluster_cpus:
        concurrent = _concurrency(settings, per_trial, population, cluster_cpus)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        results = _fit(arguments, space, settings, sweep_dir, concurrent)
    _write_summary(results, settings, sweep_dir)


def _concurrency(settings: Mapping[str, Any], per_trial: float, population: int, cluster_cpus: float) -> int:
    """Trials at a time: what the cluster's CPUs hold; PBT's whole population.

    The study's own loop (Tune's controller, in this process) reserves no CPU: it only waits for results and
    decides, a few ms per iteration, so a CPU kept for it would idle -- half of a 2-core machine.
    """
    if population > 1:
        if population * per_trial > cluster_cpus:
            raise ConfigError(f"PBT runs its {population} trials at once: that needs {population * per_trial:g} "
                              f"CPUs ({per_trial:g} per trial), the Ray cluster has {cluster_cpus:g}")
        return population
    if per_trial > cluster_cpus:
        raise ConfigError(f"one trial needs {per_trial:g} CPUs (its driver, env runners and learners); the Ray "
                          f"cluster has {cluster_cpus:g}")
    fits = math.floor(cluster_cpus / per_trial)
    return min(fits, settings["max_concurrent_trials"] or fits)


def _check_settings(settings: Mapping[str, Any]) -> None:
    scheduler = settings["scheduler"]
    checks = (
        (scheduler["type"], SCHEDULERS, "hydra.sweeper.scheduler.type"),
        (settings["search_alg"], SEARCH_ALGS, "hydra.sweeper.search_alg"),
        (settings["mode"], MODES, "hydra.sweeper.mode"),
        (settings["metric"], OBJECTIVES, "hydra.sweeper.metric"),
        (scheduler["time_attr"], TIME_ATTRS, "hydra.sweeper.scheduler.time_attr"),
    )
    for value, allowed, key in checks:
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)} (got {value!r})")
    if settings["num_samples"] < 1:
        raise ConfigError(f"hydra.sweeper.num_samples must be >= 1 (got {settings['num_samples']})")
    if settings["search_alg"] == "optuna":
        from importlib.metadata import version

        installed = version("optuna")
        if int(installed.split(".")[0]) < 3:
            raise ConfigError(f"hydra.sweeper.search_alg=optuna needs optuna >= 3 (Ray Tune's OptunaSearch); this "
                              f"install has optuna {installed}, held below 3 by hydra-optuna-sweeper (the "
                              "hparams_search=*_optuna presets); use search_alg=random")


def _check_trial_config(arguments: list[str], space: Mapping[str, Any]) -> AlgorithmConfig:
    """The config of a first sample, validated as a CLI run's is: a typo ends the study before it starts."""
    from rlrun.algorithms.from_config import validated_algorithm_config
    from rlrun.tune.compose import trial_config

    sample = {k: v.sample() if hasattr(v, "sample") else v for k, v in space.items()}
    return validated_algorithm_config(trial_config(arguments, sample))


@contextlib.contextmanager
def _ray(cfg: DictConfig, need_cpus: float) -> Iterator[float]:
    """Join `ray.address`, or start a local instance (with room for `need_cpus`) and stop it at the end;
    yields the cluster's CPUs."""
    import ray

    from rlrun.cluster.session import connect

    connect(cfg.ray, need_cpus=need_cpus)
    try:
        yield float(ray.cluster_resources().get("CPU", 0))
    finally:
        ray.shutdown()  # stops a local instance; only disconnects from a joined cluster


def _fit(arguments: list[str], space: dict[str, Any], settings: Mapping[str, Any], sweep_dir: Path,
         concurrent: int) -> Any:
    # Every trial keeps rlrun's own records (metrics.jsonl, TensorBoard); of Tune's loggers only the JSON and
    # CSV ones that its result grid reads back are kept (its TensorBoard one would want tensorboardX).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from rlrun.tune.trainable import make_trainable

    trainable = make_trainable(arguments, run_root=sweep_dir)
    scheduler = _scheduler(settings, space)
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=settings["metric"], mode=settings["mode"], num_samples=settings["num_samples"],
            scheduler=scheduler, search_alg=_search_alg(settings, concurrent), trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name, reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(sweep_dir), verbose=0,
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
    log.info("study: %d trials, %d at a time, %s scheduler, objective %s (%s)", settings["num_samples"],
             concurrent, settings["scheduler"]["type"], settings["metric"], settings["mode"])
    return tuner.fit()


def _trial_name(trial: Any) -> str:
    """`trial_0003`: the run directory of the 4th trial (Tune ids end in the trial's index)."""
    return f"trial_{trial.trial_id.rsplit('_', 1)[-1]}"


def _scheduler(settings: Mapping[str, Any], space: dict[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    s = settings["scheduler"]
    if s["type"] == "asha":
        return ASHAScheduler(time_attr=s["time_attr"], max_t=s["max_t"], grace_period=s["grace_period"],
                             reduction_factor=s["reduction_factor"])
    if s["type"] == "pbt":
        mutations = {k: v for k, v in space.items() if hasattr(v, "sample")}
        return PopulationBasedTraining(time_attr=s["time_attr"], perturbation_interval=s["perturbation_interval"],
                                       hyperparam_mutations=mutations, quantile_fraction=s["quantile_fraction"],
                                       resample_probability=s["resample_probability"])
    return FIFOScheduler()


def _search_alg(settings: Mapping[str, Any], concurrent: int) -> Any:
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if settings["search_alg"] == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(seed=settings["seed"]), max_concurrent=concurrent)
    return BasicVariantGenerator(random_state=settings["seed"], max_concurrent=concurrent)


def _write_summary(results: Any, settings: Mapping[str, Any], sweep_dir: Path) -> None:
    """study_summary.yaml: the best trial and every trial's status, last iteration and last objective value."""
    metric, mode = settings["metric"], settings["mode"]
    trials = []
    for result in results:
        metrics = result.metrics or {}
        trials.append({
            "run_dir": metrics.get("run_dir", str(result.path)),
            "params": _plain(result.config),
            "status": "error" if result.error else ("completed" if metrics.get("rlrun_stop") else "stopped early"),
            "iterations": metrics.get("training_iteration"),
            "env_steps": metrics.get("num_env_steps_sampled_lifetime"),
            metric: metrics.get(metric),
            **({"error": str(result.error).splitlines()[0]} if result.error else {}),
        })
    scored = [t for t in trials if t[metric] is not None and math.isfinite(t[metric])]
    best = (max if mode == "max" else min)(scored, key=lambda t: t[metric]) if scored else None
    summary = {"metric": metric, "mode": mode, "scheduler": settings["scheduler"]["type"],
               "best": best, "trials": trials}
    OmegaConf.save(OmegaConf.create(summary), sweep_dir / SUMMARY_FILE)
    if best is not None:
        log.info("best trial: %s = %.4g with %s (%s)", metric, best[metric], best["params"], best["run_dir"])
    print(f"study finished: {len(trials)} trials; best {metric} "
          f"{'-' if best is None else format(best[metric], '.4g')}; summary {sweep_dir / SUMMARY_FILE}")


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) else v) for k, v in config.items()}

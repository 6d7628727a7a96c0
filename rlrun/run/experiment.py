"""One experiment: build the algorithm from the config, train until a stop criterion, record everything."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.cluster import ClusterError, ClusterInfo, cluster_session
from rlrun.config.convert import build_algorithm_config, validate_run
from rlrun.config.errors import ConfigError
from rlrun.run.checkpoints import save_checkpoint
from rlrun.run.console import make_display
from rlrun.run.plots import RETURN_KEY, plot_learning_curve
from rlrun.run.recorder import RunRecorder, read_metrics

log = logging.getLogger("rlrun")


def stop_reason(cfg: DictConfig, metrics: dict[str, Any]) -> str | None:
    """The first `stop.*` criterion the latest metrics reach, or None to keep going."""
    stop = cfg.stop
    if stop.return_mean is not None and metrics.get(RETURN_KEY, -float("inf")) >= stop.return_mean:
        return f"return_mean >= {stop.return_mean}"
    if stop.timesteps is not None and metrics["num_env_steps_sampled_lifetime"] >= stop.timesteps:
        return f"timesteps >= {stop.timesteps}"
    if stop.iterations is not None and metrics["training_iteration"] >= stop.iterations:
        return f"iterations >= {stop.iterations}"
    if stop.time_s is not None and metrics["time_total_s"] >= stop.time_s:
        return f"time_s >= {stop.time_s}"
    return None


def run_experiment(cfg: DictConfig, run_dir: Path) -> float | None:
    """Train until a stop criterion; returns the final mean return (a sweeper's objective).

    A config error removes the run directory Hydra just created, so a mistake
    leaves nothing behind; an interrupted run still writes its final checkpoint.
    """
    try:
        validate_run(cfg)
        config = build_algorithm_config(cfg)
        config.validate()
    except ConfigError:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # Only a valid config starts processes: Ray (if asked for) comes up here and goes down on every exit path.
    try:
        with cluster_session(cfg.ray, config) as cluster:
            return train_until_stop(cfg, config, run_dir, cluster)
    except ClusterError:  # the cluster cannot host this config: nothing ran, so nothing is kept
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def train_until_stop(cfg: DictConfig, config: AlgorithmConfig, run_dir: Path, cluster: ClusterInfo) -> float | None:
    """The training loop of a validated run: record every iteration, checkpoint, stop on a criterion."""
    algo = config.algo_class(config, smoothing_episodes=cfg.logger.smoothing_episodes)
    recorder = RunRecorder(run_dir, cfg.logger.tensorboard, OmegaConf.to_container(cfg, resolve=True))
    display = make_display(cfg.logger.console.value, cfg.stop.timesteps)
    display.start(f"rlrun: {cfg.algo.name} on {cfg.env.id}, seed {cfg.seed} -> {run_dir}\n{cluster.describe(config)}")
    log.info("config:\n%s", OmegaConf.to_yaml(cfg))
    metrics: dict[str, Any] = {}
    reason = "interrupted"
    try:
        while True:
            metrics = recorder.record(algo.train())
            display.update(metrics)
            every = cfg.checkpoint.every_iterations
            if every and algo.iteration % every == 0:
                save_checkpoint(algo, run_dir)
            reason = stop_reason(cfg, metrics)
            if reason is not None:
                break
    finally:
        save_checkpoint(algo, run_dir, final=True)
        recorder.close()
        algo.stop()
        plot_learning_curve(read_metrics(run_dir), run_dir / "learning_curve.png", f"{cfg.algo.name} on {cfg.env.id}")
        display.finish(metrics, run_dir, reason)
        log.info("finished (%s) after %d iterations at %s", reason, algo.iteration, time.strftime("%X"))
    return metrics.get(RETURN_KEY)

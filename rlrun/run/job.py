"""The job Hydra runs for `rlrun` (and `rlrun.train`): check the config, then train (rlrun/run/experiment.py).

The checks that read only the schemas (unknown keys, stop criteria, one-key ranges such as `algo.lr > 0`) come
first, before this module imports anything a run needs: torch, the envs and Ray cost seconds of CPU, which a
mistyped value should not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import DictConfig

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.config.errors import ConfigError
from rlrun.config.schema import register_schemas
from rlrun.config.validation import validate_run


def run_experiment(cfg: DictConfig, run_dir: Path) -> float | None:
    """Train until a stop criterion; returns the final evaluation's mean return (a sweeper's objective).

    The run ends with one greedy evaluation (`evaluation.episodes` episodes) even
    when periodic evaluation is off, so every run reports a comparable number.
    A config error removes the run directory Hydra just created, so a mistake
    leaves nothing behind -- unless the directory is a run being resumed, which
    is left as it was; an interrupted run still writes its final checkpoint.
    """
    resuming = cfg.resume is not None
    try:
        # A job in a process of its own (a launcher's worker) has not registered the schemas yet.
        register_schemas(algorithm_schemas())
        validate_run(cfg)
        from rlrun.algorithms.from_config import validated_algorithm_config
        from rlrun.run.dataset_env import apply_dataset_env
        from rlrun.run.resume import check_config_unchanged
        from rlrun.run.trackers import open_trackers

        apply_dataset_env(cfg, run_dir)
        if resuming:
            check_config_unchanged(cfg, run_dir)
        config = validated_algorithm_config(cfg)
        trackers = open_trackers(cfg, run_dir)  # a tracker's missing package or silent server ends it here
    except ConfigError:
        remove_rejected(run_dir, resuming)
        raise
    from rlrun.cluster import ClusterError, cluster_session
    from rlrun.run.experiment import train_until_stop
    from rlrun.run.trackers.base import TrackerError

    # Only a valid config starts processes: Ray (if asked for) comes up here and goes down on every exit path.
    try:
        with cluster_session(cfg.ray, config) as cluster:
            return train_until_stop(cfg, config, run_dir, cluster, trackers)
    except (ClusterError, TrackerError):  # no cluster for this config, or no tracked run: nothing ran, nothing kept
        remove_rejected(run_dir, resuming)
        raise


def remove_rejected(run_dir: Path, resuming: bool) -> None:
    """Remove a rejected command's run directory, unless it is a run's: one being resumed, or one that another
    command started in the same second (Hydra's default `outputs/<date>/<time>` is then the same directory), which
    holds that run's metrics or checkpoints and must not be lost to this command's mistake."""
    if resuming or (run_dir / "metrics.jsonl").exists() or (run_dir / "checkpoints").exists():
        return
    shutil.rmtree(run_dir, ignore_errors=True)

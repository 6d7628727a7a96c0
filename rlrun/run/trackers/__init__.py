"""Experiment trackers selected by the logger group: `logger=mlflow`, `logger=wandb`.

`open_trackers` runs with the config checks, before anything starts: it imports the
tracker's package (only then: the default logger never imports mlflow or wandb) and
makes sure its server answers, so a mistake is one line and leaves no run directory.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlrun.run.trackers.base import RunInfo, Tracker


def open_trackers(cfg: DictConfig, run_dir: Path) -> list[Tracker]:
    """The trackers `cfg.logger` selects (none for `logger=default`), checked and ready to `start`."""
    if cfg.logger.name == "mlflow":
        from rlrun.run.trackers.mlflow_tracker import MlflowTracker

        return [MlflowTracker(cfg.logger, run_info(cfg, run_dir))]
    if cfg.logger.name == "wandb":
        from rlrun.run.trackers.wandb_tracker import WandbTracker

        return [WandbTracker(cfg.logger, run_info(cfg, run_dir))]
    return []


def run_info(cfg: DictConfig, run_dir: Path) -> RunInfo:
    """Name, tags and sweep of a run, from its config and (in the CLI) Hydra's job.

    A sweep job is named by its number and overrides (`0: seed=0 algo.lr=0.001`) and grouped
    by its sweep directory; a single run is named by its run directory.
    """
    tags = {"algo": str(cfg.algo.name), "env": str(cfg.env.id), "seed": str(cfg.seed), "run_dir": str(run_dir)}
    name, sweep, sweep_dir = _display_path(run_dir), None, None
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            sweep_dir = Path(hydra_cfg.sweep.dir)
            sweep = _display_path(sweep_dir)
            # The job's overrides say what sets it apart; logger.* ones only say where it is tracked.
            overrides = [o for o in hydra_cfg.overrides.task if not o.lstrip("+~").startswith("logger")]
            name = f"{hydra_cfg.job.num}: {' '.join(overrides)}"
            tags["sweep"] = sweep
    return RunInfo(run_dir=run_dir, name=name, tags=tags, sweep=sweep, sweep_dir=sweep_dir,
                   resuming=cfg.resume is not None)


def _display_path(path: Path) -> str:
    """A path as the user typed it: relative to the working directory when inside it."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)

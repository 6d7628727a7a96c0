"""`logger=wandb`: each run is a Weights & Biases run; the jobs of a sweep share a W&B `group`.

Offline first: `logger.mode=offline` (the default) writes the run under the run directory
(`wandb/offline-run-*`) with no network or account, and `wandb sync <that dir>` uploads it
later; a resumed run writes a second offline directory with the same run id, and
`wandb sync` puts both into the one run. W&B's own console output is turned off, so
rlrun's progress display stays as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from omegaconf import DictConfig

from rlrun.run.trackers.base import RunInfo, Tracker, TrackerError, check_reachable, import_tracker_package

DEFAULT_BASE_URL = "https://api.wandb.ai"
STEP_METRIC = "num_env_steps_sampled_lifetime"


class WandbTracker(Tracker):
    kind = "wandb"

    def __init__(self, logger: DictConfig, info: RunInfo) -> None:
        """Checks the package and, online, that the W&B server answers, before anything starts."""
        super().__init__(info, logger.artifacts)
        self.project = logger.project
        self.mode = logger.mode.value
        if self.mode == "online":
            check_reachable(os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL), "the W&B server at")
        self.wandb = import_tracker_package("wandb")
        self.run = None

    def start(self, params: Mapping[str, bool | int | float | str]) -> str:
        wandb = self.wandb
        saved = self.saved_run(self.project)
        resume = {"id": saved["run_id"], "resume": "allow"} if saved is not None else {}
        try:
            self.run = wandb.init(
                project=self.project, mode=self.mode, dir=str(self.info.run_dir), name=self.info.name,
                group=self.info.sweep, tags=[self.info.tags["algo"], self.info.tags["env"]], job_type="train",
                settings=wandb.Settings(console="off", quiet=True, silent=True), **resume,
            )
        except Exception as e:  # no API key, a refused login, a timeout: W&B's message says which
            raise TrackerError(f"logger=wandb could not start a run in project {self.project}: {e}") from None
        # On resume the stop.* / logger.* keys given anew replace the old values.
        self.run.config.update(dict(params), allow_val_change=True)
        # Charts plot against env steps, as TensorBoard does; the step itself is the training iteration.
        self.run.define_metric("*", step_metric=STEP_METRIC)
        self.save_run(self.project, self.run.id)
        # A resumed run adds an offline directory with the same run id: sync them all, in order.
        offline_dirs = self.info.run_dir / "wandb" / "offline-run-*"
        where = f"; upload with: wandb sync {offline_dirs}" if self.mode == "offline" else ""
        return f"W&B run {self.run.id} ({self.mode}) in project {self.project}{where}"

    def log_row(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def finish(self, error: BaseException | None) -> None:
        paths = self.artifact_paths()
        if paths:
            # One artifact per run: the learning curve and the final checkpoint, at their run-directory paths.
            artifact = self.wandb.Artifact(f"run-{self.run.id}", type="model")
            for path in paths:
                files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
                for file in files:
                    artifact.add_file(str(file), name=str(file.relative_to(self.info.run_dir)))
            self.run.log_artifact(artifact, aliases=["final"])
        self.run.finish(exit_code=0 if error is None else 1)

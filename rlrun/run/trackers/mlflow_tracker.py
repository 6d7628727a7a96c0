"""`logger=mlflow`: each run is an MLflow run; the jobs of a sweep are children of one parent run.

Through `MlflowClient` (no fluent API, no global active run), so sweep jobs that share a
process (Optuna, the basic launcher) keep their runs apart. The tracking URI is a server
(`http://host:port`), a database (`sqlite:///mlflow.db`) or a local directory, MLflow's
file store, which works with no network at all.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig

from rlrun.config.errors import ConfigError
from rlrun.run.trackers.base import (
    RunInfo,
    Tracker,
    TrackerError,
    check_reachable,
    import_tracker_package,
    read_saved_runs,
    save_run,
)

# MLflow's limits per log_batch call.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_SWEEP_LOCK = ".trackers.lock"

# The kind of an experiment (MLflow >= 3): ours are model training, not GenAI development.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


class MlflowTracker(Tracker):
    kind = "mlflow"

    def __init__(self, logger: DictConfig, info: RunInfo) -> None:
        """Checks what can fail before anything starts: the package, the server, the experiment."""
        super().__init__(info, logger.artifacts)
        self.tracking_uri = _resolve_uri(logger.tracking_uri)
        scheme = urlparse(self.tracking_uri).scheme
        if scheme in ("http", "https"):
            check_reachable(self.tracking_uri, "the MLflow tracking server at")
        elif scheme in ("", "file"):
            # MLflow 3 refuses its file store unless asked for it; it is our offline default.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        import_tracker_package("mlflow")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        try:
            self.experiment_id = self._experiment_id(logger.experiment)
        except MlflowException as e:
            raise ConfigError(f"logger.tracking_uri={self.tracking_uri}: {e.message}") from None
        self.run_id: str | None = None
        self.parent_run_id: str | None = None

    def _experiment_id(self, name: str) -> str:
        """The experiment called `name`, created if new (by whichever sweep job comes first)."""
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                # MLflow 3's UI opens an experiment without this tag in its GenAI (traces) view.
                return self.client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
            except MlflowException:  # a concurrent job created it a moment ago
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            restore = f"mlflow experiments restore --experiment-id {experiment.experiment_id}"
            raise ConfigError(f"logger.experiment={name} is a deleted MLflow experiment: restore it ({restore}) "
                              "or pick another name")
        return experiment.experiment_id

    def start(self, params: Mapping[str, bool | int | float | str]) -> str:
        from mlflow.exceptions import MlflowException

        try:
            return self._start(params)
        except MlflowException as e:
            raise TrackerError(f"logger=mlflow could not start a run at {self.tracking_uri}: {e.message}") from None

    def _start(self, params: Mapping[str, bool | int | float | str]) -> str:
        from mlflow.entities import Param

        saved = self.saved_run(self.tracking_uri)
        if saved is not None:
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            # Parameters cannot change in MLflow: the ones the run started with stay, new keys are added.
            logged = self.client.get_run(self.run_id).data.params
            params = {key: value for key, value in params.items() if key not in logged}
        else:
            tags = dict(self.info.tags)
            if self.info.sweep_dir is not None:
                self.parent_run_id = self._sweep_parent_run()
                tags["mlflow.parentRunId"] = self.parent_run_id
            self.run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=self.info.name).info.run_id
            self.save_run(self.tracking_uri, self.run_id)
        items = [Param(key, str(value)) for key, value in params.items()]
        for i in range(0, len(items), _PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _PARAMS_PER_BATCH])
        return f"MLflow run {self.run_id} (experiment {self.experiment_id}) at {self.tracking_uri}"

    def _sweep_parent_run(self) -> str:
        """The sweep's parent run: created by its first job, found in the sweep directory by the others.

        A file lock makes jobs of the parallel launcher (other processes) agree on one.
        """
        sweep_dir = self.info.sweep_dir
        target = f"{self.tracking_uri}#{self.experiment_id}"
        with open(sweep_dir / _SWEEP_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            saved = read_saved_runs(sweep_dir).get(self.kind)
            if saved is not None and saved["target"] == target:
                return saved["run_id"]
            tags = {"sweep": self.info.sweep, "algo": self.info.tags["algo"], "env": self.info.tags["env"]}
            run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=self.info.sweep).info.run_id
            save_run(sweep_dir, self.kind, target, run_id)
            return run_id

    def log_row(self, scalars: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        metrics = [Metric(key, value, now_ms, step) for key, value in scalars.items()]
        for i in range(0, len(metrics), _METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + _METRICS_PER_BATCH])

    def finish(self, error: BaseException | None) -> None:
        for path in self.artifact_paths():
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), str(path.relative_to(self.info.run_dir)))
            else:
                self.client.log_artifact(self.run_id, str(path))
        status = "FINISHED" if error is None else "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        self.client.set_terminated(self.run_id, status)
        if self.parent_run_id is not None:  # the parent's end is its last job's
            self.client.set_terminated(self.parent_run_id)


def _resolve_uri(uri: str) -> str:
    """A local directory as an absolute path (the store a resumed run looks for); other URIs as given."""
    return str(Path(uri).expanduser().resolve()) if urlparse(uri).scheme == "" else uri

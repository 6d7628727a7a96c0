"""What every experiment tracker does for a run, and what they share: the run's identity, its saved run id.

A tracker mirrors one run directory into a tracked run (an MLflow run, a W&B run): the
config as parameters once, one call per metrics row, artifacts and the outcome at the
end. It is a callback (`on_run_start`, `on_train_result`, `on_run_end`) that `RunRecorder`
drives after the user's, so only the process that writes metrics.jsonl -- the driver, in
Ray mode too -- ever talks to a tracker, and it records what the user's callbacks added.

The tracked run's id is kept in the run directory (`trackers.json`), so `resume=`
continues the same tracked run instead of starting a second one.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rlrun.callbacks import Callback
from rlrun.config.errors import ConfigError
from rlrun.extras import install_hint
from rlrun.run.recorder import scalars

TRACKERS_FILE = "trackers.json"
LEARNING_CURVE = "learning_curve.png"
FINAL_CHECKPOINT = Path("checkpoints") / "final"
# How long a tracking server may take to answer before the run is refused.
CONNECT_TIMEOUT_S = 5.0


class TrackerError(ConfigError):
    """A tracker could not start its run (no login, a refused request): one line, and nothing has trained yet."""


@dataclass(frozen=True)
class RunInfo:
    """Who a run is, for a tracker: its name, tags, and the sweep it belongs to (None for a single run)."""

    run_dir: Path
    name: str
    tags: dict[str, str]
    sweep: str | None
    sweep_dir: Path | None
    resuming: bool


class Tracker(Callback, ABC):
    """One tracked run. `start` and `finish` are called once each, `log_row` once per iteration (through the
    callback hooks); a failure once training is under way drops the tracker, not the run (`best_effort`)."""

    # The `logger=` option and the key of this tracker in trackers.json.
    kind: str
    best_effort = True

    def __init__(self, info: RunInfo, artifacts: bool) -> None:
        self.info = info
        self.artifacts = artifacts

    @abstractmethod
    def start(self, params: Mapping[str, bool | int | float | str]) -> str:
        """Create the tracked run (or continue the saved one when resuming); returns a line for the console.

        Raises TrackerError when the tracker refuses.
        """

    @abstractmethod
    def log_row(self, scalars: Mapping[str, float], step: int) -> None:
        """One iteration's finite numbers, at `step` (the training iteration)."""

    @abstractmethod
    def finish(self, error: BaseException | None) -> None:
        """Upload the artifacts (unless turned off) and mark the run finished, failed (`error`) or killed."""

    def on_run_start(self, *, run_dir: Path, params: dict[str, Any], **kwargs: Any) -> str:
        return self.start(params)

    def on_train_result(self, *, result: dict[str, Any], **kwargs: Any) -> None:
        self.log_row(scalars(result), int(result.get("training_iteration", 0)))

    def on_run_end(self, *, error: BaseException | None, **kwargs: Any) -> None:
        self.finish(error)

    def artifact_paths(self) -> list[Path]:
        """The files and directories to upload: the learning curve and the final checkpoint, where they exist."""
        if not self.artifacts:
            return []
        paths = (self.info.run_dir / LEARNING_CURVE, self.info.run_dir / FINAL_CHECKPOINT)
        return [path for path in paths if path.exists()]

    def saved_run(self, target: str) -> dict[str, Any] | None:
        """The tracked run a resumed run continues: the one saved for this tracker and `target` (URI, project)."""
        if not self.info.resuming:
            return None
        saved = read_saved_runs(self.info.run_dir).get(self.kind)
        return saved if saved is not None and saved.get("target") == target else None

    def save_run(self, target: str, run_id: str) -> None:
        """Remember the tracked run in the run directory, for `resume=`."""
        save_run(self.info.run_dir, self.kind, target, run_id)


def read_saved_runs(directory: Path) -> dict[str, Any]:
    """trackers.json: {tracker: {"target": ..., "run_id": ...}}; empty where no tracker has written one."""
    path = directory / TRACKERS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def save_run(directory: Path, kind: str, target: str, run_id: str) -> None:
    """Record `kind`'s run id for `target` in `directory`/trackers.json (a run's, or a sweep's parent run)."""
    saved = read_saved_runs(directory)
    saved[kind] = {"target": target, "run_id": run_id}
    path = directory / TRACKERS_FILE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(saved, indent=2) + "\n")
    os.replace(tmp, path)


def import_tracker_package(name: str) -> ModuleType:
    """Import a tracker's package only when a run selects it; a missing one names the extra to install."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(f"logger={name} needs the {name} package: {install_hint(name)} ({e})") from None


def check_reachable(url: str, what: str) -> None:
    """Refuse a run whose tracking server does not answer within seconds, before anything starts.

    Any HTTP answer counts (even 404 or 401): the server is there, and the tracker's
    own client reports what it says. Only silence, a refused connection or an unknown
    host end the run here.
    """
    try:
        urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ConfigError(f"{what} {url} does not answer ({reason}); start it, or check the address") from None

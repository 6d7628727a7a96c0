"""RunRecorder: one line per iteration in metrics.jsonl, the same scalars in TensorBoard and the trackers.

TensorBoard also gets the run's config twice: as text, and as hparams (flattened to
`algo.lr`-style keys) so that `tensorboard --logdir outputs` compares runs in its
HPARAMS tab against their training and evaluation returns. Experiment trackers
(`logger=mlflow|wandb`, rlrun/run/trackers) get the same flattened config as
parameters, every row's scalars, and at the end the artifacts and the outcome.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlrun.run.trackers.base import Tracker

METRICS_FILE = "metrics.jsonl"
# The scalars the HPARAMS tab shows beside each run's hparams.
HPARAM_METRICS = ("env_runners/episode_return_mean", "evaluation/episode_return_mean")

log = logging.getLogger("rlrun")


def flatten(tree: Mapping[str, Any], sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """Nested results -> RLlib-style slash keys (`learners/default_policy/total_loss`); configs use `sep="."`."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, sep, f"{name}{sep}"))
        else:
            flat[name] = value
    return flat


def flatten_hparams(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """A nested config as hparams: dotted keys, values TensorBoard takes (None -> "null", lists -> JSON)."""
    flat: dict[str, bool | int | float | str] = {}
    for name, value in flatten(config, sep=".").items():
        if value is None:
            flat[name] = "null"
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def scalars(flat: Mapping[str, Any]) -> dict[str, float]:
    """The entries of a flat row that plot as numbers: finite ints and floats (no bools, strings or NaN)."""
    return {
        key: float(value)
        for key, value in flat.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


class RunRecorder:
    """Appends metrics as they come: a crash loses at most the iteration in flight.

    A resumed run passes `purge_step`, the first TensorBoard step after its checkpoint:
    TensorBoard then hides what the interrupted process logged from that step on.

    `trackers` start their tracked runs here, before anything is written, so one that
    cannot start leaves the run directory as it was. Once training is under way, a
    tracker that fails (a server gone away) is dropped with a warning and training goes
    on: metrics.jsonl and TensorBoard still hold everything.
    """

    def __init__(
        self,
        run_dir: Path,
        tensorboard: bool,
        hparams: Mapping[str, Any] | None = None,
        purge_step: int | None = None,
        trackers: Sequence[Tracker] = (),
    ) -> None:
        self.run_dir = run_dir
        params = flatten_hparams(hparams) if hparams else {}
        # One line per tracker for the console: which tracked run this is, and where.
        self.tracking = [tracker.start(params) for tracker in trackers]
        self._trackers = list(trackers)
        # Open for the whole run, line-buffered: every iteration reaches the file at once.
        self._file = open(run_dir / METRICS_FILE, "a", buffering=1)  # noqa: SIM115 - closed in close()
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)
            if hparams:
                self._writer.add_text("config", "```\n" + json.dumps(dict(hparams), indent=2) + "\n```")
                self._add_hparams(hparams)

    def _add_hparams(self, config: Mapping[str, Any]) -> None:
        """Into this run's own event file: `SummaryWriter.add_hparams` would start a separate sub-run."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(flatten_hparams(config), dict.fromkeys(HPARAM_METRICS, 0.0)):
            self._writer.file_writer.add_summary(summary)

    def record(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """Write one iteration; returns the flat dict that was written."""
        flat = {**flatten(results), "timestamp": time.time()}
        self._file.write(json.dumps(flat) + "\n")
        numbers = scalars(flat)
        if self._writer is not None:
            step = int(flat.get("num_env_steps_sampled_lifetime", flat.get("training_iteration", 0)))
            for key, value in numbers.items():
                self._writer.add_scalar(key, value, global_step=step)
        iteration = int(flat.get("training_iteration", 0))
        for tracker in list(self._trackers):
            self._call(tracker, tracker.log_row, numbers, iteration)
        return flat

    def close(self, error: BaseException | None = None) -> None:
        """Close the files; the trackers upload their artifacts and end their runs (failed if `error`)."""
        self._file.close()
        if self._writer is not None:
            self._writer.close()
        for tracker in list(self._trackers):
            self._call(tracker, tracker.finish, error)
        self._trackers.clear()

    def _call(self, tracker: Tracker, method: Callable[..., None], *args: Any) -> None:
        """A tracker's failure mid-run costs its own records, not the training run."""
        try:
            method(*args)
        except Exception as e:
            log.warning("logger=%s failed (%s: %s); the run goes on without it", tracker.kind, type(e).__name__, e)
            self._trackers.remove(tracker)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All iterations of a run directory's metrics.jsonl (a torn last line is ignored)."""
    rows = []
    for line in (run_dir / METRICS_FILE).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows

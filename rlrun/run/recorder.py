"""RunRecorder: one line per iteration in metrics.jsonl, the same row through the run's callbacks.

The records beside metrics.jsonl are callbacks too: TensorBoard (rlrun/run/tensorboard.py) and the
experiment trackers (`logger=mlflow|wandb`, rlrun/run/trackers) get the flattened config at the start
(`on_run_start`), every row's scalars (`on_train_result`) and the outcome at the end (`on_run_end`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlrun.callbacks import Callback, CallbackList, MetricsLogger

METRICS_FILE = "metrics.jsonl"


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

    It drives the run's callbacks: the user's first, then the run's other records (TensorBoard, the trackers;
    `logger.*`), so each sees what the ones before it added to a row. They start here (`on_run_start`), before
    anything is written, so one that cannot start (a tracker's server) leaves the run directory as it was.
    Once training is under way, a tracker that fails is dropped with a warning and training goes on:
    metrics.jsonl still holds everything.
    """

    def __init__(self, run_dir: Path, hparams: Mapping[str, Any] | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.run_dir = run_dir
        self.callbacks = CallbackList(callbacks)
        params = flatten_hparams(hparams) if hparams else {}
        # One line per tracker for the console: which tracked run this is, and where.
        self.tracking = [line for line in self.callbacks.call("on_run_start", run_dir=run_dir, params=params) if line]
        # Open for the whole run, line-buffered: every iteration reaches the file at once.
        self._file = open(run_dir / METRICS_FILE, "a", buffering=1)  # noqa: SIM115 - closed in close()

    def record(self, algorithm: Any, results: Mapping[str, Any],
               final_evaluation: Callable[[], Mapping[str, Any]]) -> tuple[dict[str, Any], str | None]:
        """One iteration through every callback's `on_train_result`, then into metrics.jsonl; returns the flat row
        that was written and the first reason a callback gave to stop (None: go on).

        What a callback logs through `metrics_logger` joins the row at once. When a callback asks to stop,
        `final_evaluation()` (flat `evaluation/*` metrics, {} if this iteration evaluated already) joins it
        too, so the callbacks after it and metrics.jsonl have the run's final evaluation.
        """
        row = {**flatten(results), "timestamp": time.time()}
        logger = MetricsLogger()
        stop = None
        for callback in self.callbacks:
            asked = self.callbacks.call_one(callback, "on_train_result", algorithm=algorithm, result=row,
                                            metrics_logger=logger)
            row.update(logger.reduce())
            if asked is None or asked is False:
                continue
            if not (asked is True or isinstance(asked, str)):  # e.g. `return result`: no reason to stop
                raise TypeError(f"{type(callback).__name__}.on_train_result returned a {type(asked).__name__}; "
                                "return a reason (a string) or True to stop the run, None to go on")
            if stop is None:
                stop = f"{type(callback).__name__}: {asked if isinstance(asked, str) else 'asked to stop'}"
                row.update(final_evaluation())
        self._file.write(json.dumps(row) + "\n")
        return row, stop

    def close(self, error: BaseException | None = None) -> None:
        """Close metrics.jsonl; the callbacks close theirs (the trackers upload their artifacts and end their runs,
        failed if `error`)."""
        self._file.close()
        self.callbacks.call("on_run_end", error=error)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All iterations of a run directory's metrics.jsonl (a torn last line is ignored)."""
    rows = []
    for line in (run_dir / METRICS_FILE).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows

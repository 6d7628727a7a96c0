"""Custom metrics: `metrics_logger.log_value(key, value, reduce=...)`, and their reduction across env runners.

An env runner's logger keeps what its hooks logged since the runner last reported its episodes; the driver
collects every runner's part with the episode statistics (`EnvRunner.get_metrics()` under
`CALLBACK_METRICS`) and reduces each key once over all of them, so a mean is the mean of every value logged in
the iteration, whichever runner logged it (not a mean of the runners' means; ray #52290). `min`, `max` and
`sum` keep one running value per runner, `mean` keeps the values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

# The key of a runner's logged metrics in `get_metrics()`: key -> [(reduce, values), ...], one entry per report.
CALLBACK_METRICS = "callback_metrics"
REDUCTIONS = {"mean": lambda v: math.fsum(v) / len(v), "min": min, "max": max, "sum": math.fsum}
# What a running value keeps for each reduction (`mean` keeps every value).
_RUNNING = {"min": min, "max": max, "sum": lambda a, b: a + b}


class MetricsLogger:
    """What hooks log in one process until `pop()`; each key has one reduction."""

    def __init__(self) -> None:
        self._logged: dict[str, tuple[str, list[float]]] = {}

    def log_value(self, key: str, value: float, reduce: str = "mean") -> None:
        """Log `value` (a number) under `key`; the iteration's row gets the `reduce` ("mean", "min", "max" or
        "sum") of every value logged under it, over all env runners."""
        if reduce not in REDUCTIONS:
            raise ValueError(f"log_value({key!r}): reduce must be one of {sorted(REDUCTIONS)} (got {reduce!r})")
        value = float(value)
        entry = self._logged.get(key)
        if entry is None:
            self._logged[key] = (reduce, [value])
            return
        if entry[0] != reduce:
            raise ValueError(f"log_value({key!r}): logged with reduce={entry[0]!r} before, now {reduce!r}")
        values = entry[1]
        if reduce == "mean":
            values.append(value)
        else:
            values[0] = _RUNNING[reduce](values[0], value)

    def pop(self) -> dict[str, list[tuple[str, list[float]]]]:
        """What was logged since the last call, as `CALLBACK_METRICS` data (plain lists: Ray and pickle carry it)."""
        logged, self._logged = self._logged, {}
        return {key: [entry] for key, entry in logged.items()}

    def reduce(self) -> dict[str, float]:
        """Each key's reduction over what was logged so far (the driver's own hooks)."""
        return reduce_logged({key: [entry] for key, entry in self._logged.items()})


def reduce_logged(logged: Mapping[str, Iterable[tuple[str, list[float]]]]) -> dict[str, float]:
    """Key -> the reduction of every value its entries hold (entries from any number of runners and reports)."""
    reduced = {}
    for key, entries in logged.items():
        entries = list(entries)
        reductions = {reduce for reduce, _ in entries}
        if len(reductions) > 1:
            raise ValueError(f"metric {key!r} was logged with different reductions {sorted(reductions)}")
        values = [v for _, part in entries for v in part]
        if values:
            reduced[key] = float(REDUCTIONS[reductions.pop()](values))
    return reduced


def runner_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The custom metrics in the episodes an EnvRunnerGroup reported (`get_metrics()`), reduced."""
    return reduce_logged(metrics.get(CALLBACK_METRICS, {}))

"""Piecewise-linear schedules over env steps (RLlib's `[[t0, v0], [t1, v1], ...]` form)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PiecewiseSchedule:
    """Linear interpolation between `(timestep, value)` points, constant outside them."""

    def __init__(self, points: Sequence[Sequence[float]]) -> None:
        if not points:
            raise ValueError("a schedule needs at least one [timestep, value] point")
        ts = [float(p[0]) for p in points]
        if any(b < a for a, b in zip(ts, ts[1:])):
            raise ValueError(f"schedule timesteps must not decrease (got {ts})")
        self._t = np.asarray(ts)
        self._v = np.asarray([float(p[1]) for p in points])

    def value(self, timestep: float) -> float:
        return float(np.interp(timestep, self._t, self._v))

"""Learning curves of every config: the mean over seeds with a 95% bootstrap band, per-seed curves faint behind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlrun.report.runs import ConfigGroup, Run
from rlrun.report.stats import CONFIDENCE, bootstrap_ci
from rlrun.run.plots import run_return

GRID_POINTS = 200


def _curve(run: Run, x_key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, return) of the iterations that have both; None before any episode finished."""
    points = [(r[x_key], run_return(r)) for r in run.rows if r.get(x_key) is not None and run_return(r) is not None]
    if not points:
        return None
    x, y = np.asarray(points, dtype=float).T
    return x, y


def common_grid(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Grid over the x range every seed covers, so the mean never extrapolates a seed's curve.

    Seeds that do not overlap at all (e.g. wall times of very different machines) fall back to
    the union of their ranges, where np.interp holds each curve at its first/last value.
    """
    low, high = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if low > high:
        low, high = min(x[0] for x, _ in curves), max(x[-1] for x, _ in curves)
    return np.linspace(low, high, GRID_POINTS) if high > low else np.asarray([low])


def plot_learning_curves(groups: Sequence[ConfigGroup], x_key: str, x_label: str, path: Path) -> None:
    """One PNG comparing the configs' mean episode return against `x_key` (env steps or wall time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for index, group in enumerate(groups):
        curves = [c for c in (_curve(run, x_key) for run in group.runs) if c is not None]
        if not curves:
            continue
        color = f"C{index % 10}"
        for x, y in curves:
            ax.plot(x, y, color=color, alpha=0.2, linewidth=0.8)
        grid = common_grid(curves)
        values = np.stack([np.interp(grid, x, y) for x, y in curves])
        low, high = bootstrap_ci(values)
        ax.plot(grid, values.mean(axis=0), color=color, linewidth=2, marker="o" if grid.size == 1 else None,
                label=f"{group.label} (n={len(curves)})")
        ax.fill_between(grid, low, high, color=color, alpha=0.25, linewidth=0)
    if ax.lines:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no episode finished in any run", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(x_label)
    ax.set_ylabel("episode return (training episodes; evaluation for offline runs)")
    ax.set_title(f"Mean over seeds, {CONFIDENCE:.0%} bootstrap CI band")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

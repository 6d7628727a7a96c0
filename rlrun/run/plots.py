"""The learning curve PNG written at the end of a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

RETURN_KEY = "env_runners/episode_return_mean"


def plot_learning_curve(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Mean episode return against env steps; None if no episode finished.

    matplotlib is imported here, when a curve is drawn, and without pyplot: a Figure
    saves itself through the Agg canvas, and pyplot's backend machinery and global
    figure registry would only add to the time between the last iteration and exit.
    """
    points = [(r["num_env_steps_sampled_lifetime"], r[RETURN_KEY]) for r in rows if RETURN_KEY in r]
    if not points:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(*zip(*points))
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return (mean of last episodes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path

"""The learning curve PNG written at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RETURN_KEY = "env_runners/episode_return_mean"
EVAL_RETURN_KEY = "evaluation/episode_return_mean"
MODULE_RETURN_PREFIX = "env_runners/module_episode_return_mean/"


def run_return(row: Mapping[str, Any]) -> float | None:
    """A metrics row's return: the training episodes' mean, or -- for an algorithm that never samples the env
    (BC, MARWIL) -- its evaluation's. What the console shows, `stop.return_mean` and the curves compare."""
    value = row.get(RETURN_KEY)
    return row.get(EVAL_RETURN_KEY) if value is None else value


def module_returns(row: Mapping[str, Any]) -> dict[str, float]:
    """A multi-agent metrics row's return per module (`module_episode_return_mean/<module>`); {} otherwise."""
    return {key.removeprefix(MODULE_RETURN_PREFIX): value for key, value in row.items()
            if key.startswith(MODULE_RETURN_PREFIX)}


def plot_learning_curve(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Mean episode return (`run_return`) against env steps; None if there is none.

    matplotlib is imported here, when a curve is drawn, and without pyplot: a Figure
    saves itself through the Agg canvas, and pyplot's backend machinery and global
    figure registry would only add to the time between the last iteration and exit.
    """
    points = [(r["num_env_steps_sampled_lifetime"], run_return(r)) for r in rows if run_return(r) is not None]
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

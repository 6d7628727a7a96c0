"""Per-run numbers from metrics.jsonl rows, and their aggregate over the seeds of a config."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlrun.report.runs import ConfigGroup, Run
from rlrun.report.stats import bootstrap_ci, iqm
from rlrun.run.plots import EVAL_RETURN_KEY, module_returns, run_return

STEPS_KEY = "num_env_steps_sampled_lifetime"
TIME_KEY = "time_total_s"


@dataclass(frozen=True)
class RunSummary:
    """What one run contributes; None where its metrics.jsonl does not have the number."""

    run: Run
    iterations: int
    env_steps: int | None
    wall_time_s: float | None
    final_return: float | None
    final_eval_return: float | None
    reached_threshold: bool
    steps_to_threshold: int | None
    time_to_threshold_s: float | None
    steps_per_s: float | None
    # Multi-agent runs: each module's last `env_runners/module_episode_return_mean/<module>`.
    final_module_returns: dict[str, float]
    # The last value of each metric the report was asked for (a callback's `env_runners/win_rate`), where logged.
    final_metrics: dict[str, float]


@dataclass(frozen=True)
class Estimate:
    """Mean over seeds with its 95% bootstrap CI, and the IQM."""

    mean: float
    low: float
    high: float
    iqm: float
    num_seeds: int


@dataclass(frozen=True)
class ConfigSummary:
    """One row of the comparison table."""

    label: str
    runs: list[RunSummary]
    final_return: Estimate | None
    eval_return: Estimate | None
    threshold: float | None
    num_reached: int
    steps_to_threshold: float | None
    time_to_threshold_s: float | None
    steps_per_s: float | None
    module_returns: dict[str, Estimate]
    metrics: dict[str, Estimate]


def _last(rows: list[dict[str, Any]], value: Callable[[dict[str, Any]], Any]) -> Any:
    """The newest row's `value(row)` that is not None."""
    return next((v for row in reversed(rows) if (v := value(row)) is not None), None)


def default_threshold(config: dict[str, Any] | None) -> float | None:
    """The run's own goal (`stop.return_mean`), else the env's registered `reward_threshold`, else None."""
    if config is None:
        return None
    goal = (config.get("stop") or {}).get("return_mean")
    if goal is not None:
        return float(goal)
    env_id = (config.get("env") or {}).get("id")
    if not isinstance(env_id, str):
        return None
    import gymnasium as gym

    try:
        threshold = gym.spec(env_id).reward_threshold
    except gym.error.Error:  # a custom `module:Class` env or an id registered elsewhere
        return None
    return None if threshold is None else float(threshold)


def watched_metrics(runs: Sequence[Run]) -> list[str]:
    """The metrics the runs' configs ask the console to show (`logger.console_metrics`), in order, once each."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(((run.config or {}).get("logger") or {}).get("console_metrics") or []))
    return list(keys)


def summarize_run(run: Run, threshold: float | None, metrics: Sequence[str] = ()) -> RunSummary:
    """A run's final numbers, and the first iteration whose mean return reaches the threshold.

    "Reaches" is `>=` on the run's return (`run_return`), exactly as `stop.return_mean` stops a run.
    """
    rows = run.rows
    reached = None
    if threshold is not None:
        reached = next((r for r in rows if (ret := run_return(r)) is not None and ret >= threshold), None)
    steps, wall = rows[-1].get(STEPS_KEY), rows[-1].get(TIME_KEY)
    return RunSummary(
        run=run,
        iterations=len(rows),
        env_steps=steps,
        wall_time_s=wall,
        final_return=_last(rows, run_return),
        final_eval_return=_last(rows, lambda row: row.get(EVAL_RETURN_KEY)),
        reached_threshold=reached is not None,
        steps_to_threshold=None if reached is None else reached.get(STEPS_KEY),
        time_to_threshold_s=None if reached is None else reached.get(TIME_KEY),
        steps_per_s=steps / wall if steps is not None and wall else None,
        final_module_returns=module_returns(rows[-1]),
        final_metrics={key: value for key in metrics
                       if (value := _last(rows, lambda row, k=key: row.get(k))) is not None},
    )


def _estimate(values: list[float | None]) -> Estimate | None:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    low, high = bootstrap_ci(present)
    return Estimate(statistics.fmean(present), float(low), float(high), iqm(present), len(present))


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize_config(group: ConfigGroup, threshold: float | None = None, metrics: Sequence[str] = ()) -> ConfigSummary:
    """Aggregate a config's seeds; `threshold` overrides each config's default (see default_threshold); `metrics`
    are further keys whose last values are aggregated the same way."""
    if threshold is None:
        threshold = default_threshold(group.runs[0].config)
    runs = [summarize_run(run, threshold, metrics) for run in group.runs]
    steps_per_s = [r.steps_per_s for r in runs if r.steps_per_s is not None]
    return ConfigSummary(
        label=group.label,
        runs=runs,
        final_return=_estimate([r.final_return for r in runs]),
        eval_return=_estimate([r.final_eval_return for r in runs]),
        threshold=threshold,
        num_reached=sum(r.reached_threshold for r in runs),
        steps_to_threshold=_median([r.steps_to_threshold for r in runs]),
        time_to_threshold_s=_median([r.time_to_threshold_s for r in runs]),
        steps_per_s=statistics.fmean(steps_per_s) if steps_per_s else None,
        module_returns={module: estimate for module in sorted({m for r in runs for m in r.final_module_returns})
                        if (estimate := _estimate([r.final_module_returns.get(module) for r in runs]))},
        metrics={key: estimate for key in metrics if (estimate := _estimate([r.final_metrics.get(key) for r in runs]))},
    )

"""report.md: the comparison table (one row per config), how each number is computed, the plots, the runs."""

from __future__ import annotations

from collections.abc import Sequence

from rlrun.report.stats import CONFIDENCE, NUM_RESAMPLES
from rlrun.report.summary import ConfigSummary, Estimate
from rlrun.run.plots import EVAL_RETURN_KEY, MODULE_RETURN_PREFIX, RETURN_KEY

NONE = "—"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", r"\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _return(value: float | None) -> str:
    # No thousands separators: a CI "[low, high]" must stay unambiguous.
    return NONE if value is None else f"{value:.2f}"


def _estimate(estimate: Estimate | None) -> str:
    if estimate is None:
        return NONE
    return f"{estimate.mean:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def _iqm(estimate: Estimate | None) -> str:
    return NONE if estimate is None else f"{estimate.iqm:.2f}"


def _count(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f} s"


def comparison_table(summaries: Sequence[ConfigSummary]) -> str:
    """One row per config; the eval column only appears when some run recorded evaluations."""
    with_eval = any(s.eval_return is not None for s in summaries)
    ci = f"{CONFIDENCE:.0%} CI"
    header = ["config", "seeds", f"final return: mean [{ci}]", "IQM"]
    header += [f"eval return: mean [{ci}]"] if with_eval else []
    header += ["threshold", "reached", "env steps to threshold", "wall time to threshold", "env steps/s"]
    rows = []
    for s in summaries:
        row = [s.label, str(len(s.runs)), _estimate(s.final_return), _iqm(s.final_return)]
        row += [_estimate(s.eval_return)] if with_eval else []
        has_threshold = s.threshold is not None
        row += [
            f"{s.threshold:g}" if has_threshold else NONE,
            f"{s.num_reached}/{len(s.runs)}" if has_threshold else NONE,
            _count(s.steps_to_threshold),
            _seconds(s.time_to_threshold_s),
            _count(s.steps_per_s),
        ]
        rows.append(row)
    return _table(header, rows)


def module_table(summaries: Sequence[ConfigSummary]) -> str | None:
    """Multi-agent configs with several modules: each module's final return (None when there are none)."""
    rows = [[s.label, module, _estimate(estimate), _iqm(estimate)]
            for s in summaries if len(s.module_returns) > 1 for module, estimate in s.module_returns.items()]
    if not rows:
        return None
    return _table(["config", "module", f"final return: mean [{CONFIDENCE:.0%} CI]", "IQM"], rows)


def metrics_table(summaries: Sequence[ConfigSummary]) -> str | None:
    """The last value of each metric asked for (`--metric`, `logger.console_metrics`), per config; None if none."""
    rows = [[s.label, key, _estimate(estimate), _iqm(estimate)]
            for s in summaries for key, estimate in s.metrics.items()]
    if not rows:
        return None
    return _table(["config", "metric", f"final value: mean [{CONFIDENCE:.0%} CI]", "IQM"], rows)


def runs_table(summaries: Sequence[ConfigSummary]) -> str:
    """Every run behind the comparison, so each aggregate can be traced to its directories."""
    header = ["config", "seed", "run directory", "iterations", "env steps", "wall time", "final return"]
    rows = [
        [s.label, NONE if r.run.seed is None else str(r.run.seed), str(r.run.path), str(r.iterations),
         _count(r.env_steps), _seconds(r.wall_time_s), _return(r.final_return)]
        for s in summaries
        for r in s.runs
    ]
    return _table(header, rows)


def render_report(summaries: Sequence[ConfigSummary], common: Sequence[str], images: Sequence[str]) -> str:
    """The whole report.md; `images` are PNG file names next to it."""
    parts = ["# rlrun report", ""]
    if common:
        parts += ["Overrides common to all runs: " + " ".join(f"`{o}`" for o in common), ""]
    parts += [
        comparison_table(summaries),
        "",
        f"- **final return**: the last `{RETURN_KEY}` of each run (its training episodes' mean return; for "
        f"offline algorithms, which never sample the env, the last `{EVAL_RETURN_KEY}`); "
        f"mean over seeds with a {CONFIDENCE:.0%} percentile bootstrap CI "
        f"({NUM_RESAMPLES:,} resamples, fixed RNG seed).",
        "- **IQM**: interquartile mean over seeds, the mean after cutting floor(n/4) seeds from each end "
        "(`scipy.stats.trim_mean(x, 0.25)`, as rliable); equal to the mean below 4 seeds.",
        f"- **eval return** (when runs have it): the last `{EVAL_RETURN_KEY}`, aggregated the same way.",
        "- **threshold**: `--threshold`, else the run's `stop.return_mean`, else the env's registered "
        "`reward_threshold`. **reached**: seeds whose mean return got there; env steps "
        "(`num_env_steps_sampled_lifetime`) and wall time (`time_total_s`) to it are medians over those seeds.",
        "- **env steps/s**: last `num_env_steps_sampled_lifetime / time_total_s`, mean over seeds.",
        "",
        "## Learning curves",
        "",
        f"Mean over seeds (each seed interpolated onto a common grid) with a {CONFIDENCE:.0%} bootstrap CI band; "
        "faint lines are the single seeds.",
        "",
    ]
    modules = module_table(summaries)
    if modules is not None:
        parts += ["## Returns per module", "",
                  "Multi-agent runs: the final return is the sum over agents; here each module's part, the last "
                  f"`{MODULE_RETURN_PREFIX}<module>` (the returns of the agents it acts for, summed per episode).",
                  "", modules, ""]
    metrics = metrics_table(summaries)
    if metrics is not None:
        parts += ["## Metrics", "",
                  "Further metrics (`--metric`, else the runs' `logger.console_metrics`, e.g. a callback's): the "
                  "last value each run logged, aggregated over seeds as the final return is.", "", metrics, ""]
    for name in images:
        parts += [f"![{name}]({name})", ""]
    parts += ["## Runs", "", runs_table(summaries), ""]
    return "\n".join(parts)

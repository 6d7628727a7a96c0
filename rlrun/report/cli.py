"""Console entry point `rlrun-report <dir>...`: compare runs and sweeps, write report.md and learning-curve PNGs.

Bad input -- a missing directory, no metrics.jsonl under it, a corrupt line -- ends in one line
`rlrun-report: error: ...` and exit status 2, before anything is written. Each report file is
written into a temporary directory inside the output directory and then moved into place, so a
failure while writing (disk full, no permission) never leaves a half-written file either.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from rlrun.report.markdown import comparison_table, metrics_table, render_report
from rlrun.report.runs import ConfigGroup, ReportError, common_overrides, discover_runs, group_runs, load_run
from rlrun.report.summary import STEPS_KEY, TIME_KEY, summarize_config, watched_metrics

EXIT_USAGE = 2
REPORT_FILE = "report.md"
# (file name, x-axis metric key, x-axis label)
PLOTS = (
    ("learning_curves_steps.png", STEPS_KEY, "env steps (num_env_steps_sampled_lifetime)"),
    ("learning_curves_time.png", TIME_KEY, "wall time [s] (time_total_s)"),
)

EXAMPLES = """\
examples:
  rlrun-report multirun/lr                                  one sweep, report in ./rlrun-report/
  rlrun-report multirun/lr outputs/2024-05-01 --out report/ several sweeps and runs side by side
  rlrun-report outputs/baseline --threshold 450             steps and time to a return of 450
  rlrun-report outputs/run --metric env_runners/win_rate    a callback's metric beside the returns"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlrun-report",
        description=textwrap.fill(
            "Compare rlrun runs and multirun sweeps (seeds grouped per config) from their metrics.jsonl: writes "
            f"{REPORT_FILE} (per config: final return with a 95% bootstrap CI and IQM, env steps and wall time "
            f"to the threshold) and {' and '.join(name for name, _, _ in PLOTS)}.", 80),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run or multirun directories (searched recursively)")
    parser.add_argument("--out", type=Path, default=Path("rlrun-report"),
                        help="output directory for report.md and the PNGs (default: ./rlrun-report)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="return to measure env steps / wall time to (default: each config's stop.return_mean, "
                             "else the env's reward_threshold)")
    parser.add_argument("--metric", action="append", default=None, metavar="KEY",
                        help="a metrics.jsonl key whose last value to tabulate, e.g. a callback's "
                             "env_runners/win_rate; repeatable (default: the runs' logger.console_metrics)")
    return parser


def _write(out: Path, report: str, groups: Sequence[ConfigGroup]) -> None:
    """Write the plots and report.md into a temporary dir inside `out`, then move each into place."""
    from rlrun.report.plots import plot_learning_curves

    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    except OSError as e:
        raise ReportError(f"cannot write the report to {out}: {e.strerror or e}") from e
    try:
        for name, x_key, x_label in PLOTS:
            plot_learning_curves(groups, x_key, x_label, tmp / name)
        (tmp / REPORT_FILE).write_text(report)
        # report.md last: it links the PNGs, so it never points at missing ones.
        for name in [*(name for name, _, _ in PLOTS), REPORT_FILE]:
            os.replace(tmp / name, out / name)
    except OSError as e:
        raise ReportError(f"cannot write the report to {out}: {e.strerror or e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        runs = [load_run(path) for path in discover_runs(args.dirs)]
        groups = group_runs(runs)
        metrics = args.metric or watched_metrics(runs)
        summaries = [summarize_config(group, args.threshold, metrics) for group in groups]
        report = render_report(summaries, common_overrides(runs), [name for name, _, _ in PLOTS])
        _write(args.out, report, groups)
    except ReportError as e:
        print(f"rlrun-report: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    print(comparison_table(summaries))
    if (table := metrics_table(summaries)) is not None:
        print(f"\n{table}")
    print(f"\n{len(runs)} runs in {len(groups)} configs; report written to {args.out / REPORT_FILE}")

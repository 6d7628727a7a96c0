"""What the terminal shows during a run: a rich live display, plain lines for CI, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

SUMMARY_KEYS = (
    "training_iteration",
    "num_env_steps_sampled_lifetime",
    "env_runners/episode_return_mean",
    "env_runners/episode_len_mean",
    "num_episodes_lifetime",
    "learners/default_policy/total_loss",
    "num_env_steps_sampled_lifetime_throughput",
    "time_total_s",
)


class ProgressDisplay:
    """Base display: `start`, `update` once per iteration, `finish` with the run's summary."""

    def __init__(self, target_steps: int | None) -> None:
        self.target_steps = target_steps
        self._start = time.perf_counter()

    def start(self, header: str) -> None:
        pass

    def update(self, metrics: Mapping[str, Any]) -> None:
        pass

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        pass

    def status(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        steps = metrics.get("num_env_steps_sampled_lifetime", 0)
        ret = metrics.get("env_runners/episode_return_mean")
        sps = steps / max(metrics.get("time_total_s", 0.0), 1e-9)
        eta = "?"
        if self.target_steps and steps and sps > 0:
            eta = f"{max(self.target_steps - steps, 0) / sps:.0f}s"
        target = f"/{self.target_steps:,}" if self.target_steps else ""
        return {
            "iter": str(metrics.get("training_iteration", 0)),
            "env steps": f"{steps:,}{target}",
            "return": "-" if ret is None else f"{ret:.1f}",
            "steps/s": f"{sps:,.0f}",
            "eta": eta,
        }


class PlainDisplay(ProgressDisplay):
    """One line at most every `interval_s` seconds, for logs and CI."""

    def __init__(self, target_steps: int | None, interval_s: float = 2.0) -> None:
        super().__init__(target_steps)
        self.interval_s = interval_s
        self._last = -float("inf")

    def start(self, header: str) -> None:
        print(header, flush=True)

    def update(self, metrics: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            print("  ".join(f"{k}={v}" for k, v in self.status(metrics).items()), flush=True)

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        print("  ".join(f"{k}={v}" for k, v in self.status(metrics).items()), flush=True)
        print(f"done ({reason}); run directory: {run_dir}", flush=True)


class RichDisplay(ProgressDisplay):
    """A live table refreshed in place, then a summary table with the run directory."""

    def __init__(self, target_steps: int | None) -> None:
        super().__init__(target_steps)
        self.console = Console()
        self._live: Live | None = None

    def start(self, header: str) -> None:
        self.console.print(header)
        self._live = Live(self._table({}), console=self.console, refresh_per_second=4, transient=True)
        self._live.start()

    def _table(self, metrics: Mapping[str, Any]) -> Table:
        table = Table(show_header=True, header_style="bold")
        status = self.status(metrics)
        for key in status:
            table.add_column(key, justify="right")
        table.add_row(*status.values())
        return table

    def update(self, metrics: Mapping[str, Any]) -> None:
        if self._live is not None:
            self._live.update(self._table(metrics))

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        if self._live is not None:
            self._live.stop()
        table = Table(title=f"rlrun finished ({reason})", show_header=False)
        table.add_column("metric", style="bold")
        table.add_column("value", justify="right")
        for key in SUMMARY_KEYS:
            if key in metrics:
                value = metrics[key]
                table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
        table.add_row("run directory", str(run_dir))
        self.console.print(table)


def make_display(mode: str, target_steps: int | None) -> ProgressDisplay:
    """`rich` falls back to `plain` when stdout is not a terminal (pipes, CI logs)."""
    if mode == "none":
        return ProgressDisplay(target_steps)
    if mode == "plain" or not sys.stdout.isatty():
        return PlainDisplay(target_steps)
    return RichDisplay(target_steps)

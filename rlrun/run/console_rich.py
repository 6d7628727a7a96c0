"""The rich console display: a live table refreshed in place, then a summary table (`logger.console=rich`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rlrun.run.console import ProgressDisplay

SUMMARY_KEYS = (
    "training_iteration",
    "num_env_steps_sampled_lifetime",
    "env_runners/episode_return_mean",
    "env_runners/episode_len_mean",
    "evaluation/episode_return_mean",
    "num_episodes_lifetime",
    "learners/default_policy/total_loss",
    "num_env_steps_sampled_lifetime_throughput",
    "time_total_s",
)


class RichDisplay(ProgressDisplay):
    """A live table refreshed in place, then a summary table with the run directory."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
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

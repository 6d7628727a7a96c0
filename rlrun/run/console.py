"""What the terminal shows during a run: a rich live display (console_rich.py), plain lines for CI, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlrun.run.plots import module_returns, run_return


class ProgressDisplay:
    """Base display: `start`, `update` once per iteration, `finish` with the run's summary."""

    def __init__(self, target_steps: int | None) -> None:
        self.target_steps = target_steps
        # Set once the env steps trained differ from those sampled; then both rates show for the rest of the run.
        self._split_throughput = False
        # An offline algorithm's return comes with its evaluations only; the last one shows until the next.
        self._last_return: float | None = None

    def start(self, header: str) -> None:
        pass

    def update(self, metrics: Mapping[str, Any]) -> None:
        pass

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        pass

    def status(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        steps = metrics.get("num_env_steps_sampled_lifetime", 0)
        trained = metrics.get("num_env_steps_trained_lifetime", steps)
        ret = run_return(metrics)
        self._last_return = ret = self._last_return if ret is None else ret
        elapsed = max(metrics.get("time_total_s", 0.0), 1e-9)
        sps = steps / elapsed
        eta = "?"
        if self.target_steps and steps and sps > 0:
            eta = f"{max(self.target_steps - steps, 0) / sps:.0f}s"
        target = f"/{self.target_steps:,}" if self.target_steps else ""
        return {
            "iter": str(metrics.get("training_iteration", 0)),
            "env steps": f"{steps:,}{target}",
            "return": "-" if ret is None else f"{ret:.1f}{_per_module(metrics)}",
            **self._throughput(sps, trained / elapsed, trained != steps),
            "eta": eta,
        }

    def _throughput(self, sampled_per_s: float, trained_per_s: float, differ: bool) -> dict[str, str]:
        """One rate while every sampled step is trained once (PPO); sampled and trained apart otherwise.

        Asynchronous algorithms train behind their runners (IMPALA) or replay batches (APPO, DQN), so
        one number would hide whether the runners or the learners set the pace.
        """
        self._split_throughput = self._split_throughput or differ
        if not self._split_throughput:
            return {"steps/s": f"{sampled_per_s:,.0f}"}
        return {"sampled/s": f"{sampled_per_s:,.0f}", "trained/s": f"{trained_per_s:,.0f}"}


def _per_module(metrics: Mapping[str, Any]) -> str:
    """A multi-agent run with several modules: each module's return, e.g. ` (agent_0 494.6, agent_1 419.2)`."""
    returns = module_returns(metrics)
    if len(returns) < 2:
        return ""
    return " (" + ", ".join(f"{module} {value:.1f}" for module, value in returns.items()) + ")"


class PlainDisplay(ProgressDisplay):
    """One line at most every `interval_s` seconds, for logs and CI; the last iteration's line always, once."""

    def __init__(self, target_steps: int | None, interval_s: float = 2.0) -> None:
        super().__init__(target_steps)
        self.interval_s = interval_s
        self._last = -float("inf")
        self._printed: str | None = None

    def start(self, header: str) -> None:
        print(header, flush=True)

    def _print_status(self, metrics: Mapping[str, Any]) -> None:
        line = "  ".join(f"{k}={v}" for k, v in self.status(metrics).items())
        # The line depends on the metrics only, so an unchanged line is the same iteration printed already.
        if line != self._printed:
            print(line, flush=True)
            self._printed = line

    def update(self, metrics: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            self._print_status(metrics)

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        self._print_status(metrics)
        print(f"done ({reason}); run directory: {run_dir}", flush=True)


def make_display(mode: str, target_steps: int | None) -> ProgressDisplay:
    """`rich` falls back to `plain` when stdout is not a terminal (pipes, CI logs)."""
    if mode == "none":
        return ProgressDisplay(target_steps)
    if mode == "plain" or not sys.stdout.isatty():
        return PlainDisplay(target_steps)
    # Imported here: rich costs start-up time that plain and silent runs need not pay.
    from rlrun.run.console_rich import RichDisplay

    return RichDisplay(target_steps)

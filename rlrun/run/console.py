"""What the terminal shows during a run: a rich live display (console_rich.py), plain lines for CI, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlrun.run.plots import EVAL_RETURN_KEY, RETURN_KEY, module_returns


class ProgressDisplay:
    """Base display: `start`, `update` once per iteration, `finish` with the run's summary.

    The targets are the stop criteria the eta can project (None: not a criterion of this run);
    `metrics` are the keys of `logger.console_metrics`, shown after the return under their last part.
    """

    def __init__(self, target_steps: int | None, target_iterations: int | None = None,
                 time_limit_s: float | None = None, metrics: Sequence[str] = ()) -> None:
        self.target_steps = target_steps
        self.target_iterations = target_iterations
        self.time_limit_s = time_limit_s
        # Each watched metric's latest value: a callback's metric is missing from iterations that logged none.
        self._watched: dict[str, float | None] = dict.fromkeys(metrics)
        # Set once the env steps trained differ from those sampled; then both rates show for the rest of the run.
        self._split_throughput = False
        # Training episodes end now and then, evaluations come every few iterations: the last of each shows until
        # the next one, each under its own name (an offline algorithm, which never trains on episodes, has only
        # evaluation returns; an off-policy run may evaluate before its first training episode has ended).
        self._last_return: float | None = None
        self._last_eval_return: float | None = None

    def start(self, header: str) -> None:
        pass

    def update(self, metrics: Mapping[str, Any]) -> None:
        pass

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        pass

    def status(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        steps = metrics.get("num_env_steps_sampled_lifetime", 0)
        trained = metrics.get("num_env_steps_trained_lifetime", steps)
        self._last_return = ret = _latest(metrics.get(RETURN_KEY), self._last_return)
        self._last_eval_return = eval_ret = _latest(metrics.get(EVAL_RETURN_KEY), self._last_eval_return)
        elapsed = max(metrics.get("time_total_s", 0.0), 1e-9)
        eta = self.eta_s(steps, metrics.get("training_iteration", 0), elapsed)
        target = f"/{self.target_steps:,}" if self.target_steps else ""
        return {
            "iter": str(metrics.get("training_iteration", 0)),
            "env steps": f"{steps:,}{target}",
            "return": "-" if ret is None else f"{ret:.1f}{_per_module(metrics)}",
            **({} if eval_ret is None else {"eval_return": f"{eval_ret:.1f}"}),
            **self._watched_status(metrics),
            **self._throughput(steps / elapsed, trained / elapsed, trained != steps),
            "eta": "?" if eta is None else f"{eta:.0f}s",
        }

    def _watched_status(self, metrics: Mapping[str, Any]) -> dict[str, str]:
        for key, last in self._watched.items():
            self._watched[key] = _latest(metrics.get(key), last)
        return {key.rpartition("/")[2]: "-" if value is None else f"{value:.4g}"
                for key, value in self._watched.items()}

    def eta_s(self, steps: int, iteration: int, elapsed: float) -> float | None:
        """Seconds until the first stop criterion ends the run, at the pace so far; None if none can be projected.

        A run stops at whichever criterion it reaches first, so the eta is the soonest of
        the projections (`stop.return_mean` cannot be projected).
        """
        projections = []
        if self.target_steps and steps:
            projections.append(max(self.target_steps - steps, 0) * elapsed / steps)
        if self.target_iterations and iteration:
            projections.append(max(self.target_iterations - iteration, 0) * elapsed / iteration)
        if self.time_limit_s is not None:
            projections.append(max(self.time_limit_s - elapsed, 0.0))
        return min(projections, default=None)

    def _throughput(self, sampled_per_s: float, trained_per_s: float, differ: bool) -> dict[str, str]:
        """One rate while every sampled step is trained once (PPO); sampled and trained apart otherwise.

        Asynchronous algorithms train behind their runners (IMPALA) or replay batches (APPO, DQN), so
        one number would hide whether the runners or the learners set the pace.
        """
        self._split_throughput = self._split_throughput or differ
        if not self._split_throughput:
            return {"steps/s": f"{sampled_per_s:,.0f}"}
        return {"sampled/s": f"{sampled_per_s:,.0f}", "trained/s": f"{trained_per_s:,.0f}"}


def _latest(value: float | None, last: float | None) -> float | None:
    return last if value is None else value


def _per_module(metrics: Mapping[str, Any]) -> str:
    """A multi-agent run with several modules: each module's return, e.g. ` (agent_0 494.6, agent_1 419.2)`."""
    returns = module_returns(metrics)
    if len(returns) < 2:
        return ""
    return " (" + ", ".join(f"{module} {value:.1f}" for module, value in returns.items()) + ")"


class PlainDisplay(ProgressDisplay):
    """One line at most every `interval_s` seconds, for logs and CI; the last iteration's line always, once."""

    def __init__(self, target_steps: int | None, target_iterations: int | None = None,
                 time_limit_s: float | None = None, metrics: Sequence[str] = (), interval_s: float = 2.0) -> None:
        super().__init__(target_steps, target_iterations, time_limit_s, metrics)
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
        # Every evaluation's return is printed once at least, however soon after the last line it comes.
        if now - self._last >= self.interval_s or EVAL_RETURN_KEY in metrics:
            self._last = now
            self._print_status(metrics)

    def finish(self, metrics: Mapping[str, Any], run_dir: Path, reason: str) -> None:
        self._print_status(metrics)
        print(f"done ({reason}); run directory: {run_dir}", flush=True)


def make_display(mode: str, stop: Any, metrics: Sequence[str] = ()) -> ProgressDisplay:
    """A display for `logger.console` whose eta projects the run's `stop` criteria, showing `metrics` too.

    `rich` falls back to `plain` when stdout is not a terminal (pipes, CI logs).
    """
    targets = (stop.timesteps, stop.iterations, stop.time_s)
    metrics = list(metrics)
    if mode == "none":
        return ProgressDisplay(*targets, metrics)
    if mode == "plain" or not sys.stdout.isatty():
        return PlainDisplay(*targets, metrics)
    # Imported here: rich costs start-up time that plain and silent runs need not pay.
    from rlrun.run.console_rich import RichDisplay

    return RichDisplay(*targets, metrics)

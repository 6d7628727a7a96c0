"""ASHA beside the full study: the same 16-config PPO CartPole study with the Optuna sweeper and with ASHA.

Both sides search the same 4-parameter space (lr, gamma, lambda_, entropy_coeff) of
experiment=cartpole_ppo_fast with a budget of 100k env steps per trial:

- Optuna: `rlrun hparams_search=ppo_cartpole_optuna hydra.sweeper.n_trials=16`, TPE,
  one trial at a time, every trial to its full budget;
- ASHA: `rlrun hparams_search=ppo_cartpole_asha hydra.sweeper.num_samples=16`, random
  search through Ray Tune, as many trials at a time as the cores hold, the worst
  stopped at rungs of 4k, 12k and 36k env steps (the preset's grace_period and
  reduction_factor), the others at the step budget.

"The same study" is the same space, number of configs and budget: the 16 sampled
configs differ (TPE vs random sampling), so the best returns compare two draws.

Each side is one fresh process timed from spawn to exit (what a user waits for),
split into its start-up (spawn to the first trial's first iteration: imports, Ray
and Tune, the first trial's set-up), the trials, and its wind-down (the last
iteration's end to exit: the last trial's final checkpoint and plot, Ray's shutdown).
Its best final return is the same quantity on both sides, read from the trials'
metrics.jsonl (Optuna: <sweep dir>/<job num>/, ASHA: <sweep dir>/trial_*/): each
trial's last `env_runners/episode_return_mean` (the training return over the last
100 episodes at its last iteration), maximised over the trials. The final greedy
evaluation is shown too where a trial has one: only trials that reached the step
budget end with one; trials ASHA stopped (at a rung, or at a max_t short of the
budget) have none. Targets (issue 12): ASHA's wall time <= 40% of Optuna's, its
best final training return >= 95% of Optuna's.

Usage: python scripts/bench_sweeps.py [--json PATH] [--quick]
`--quick` (2 trials of 10k env steps per side) only checks the script end to end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_common import RLRUN, run_watched
from omegaconf import OmegaConf

import rlrun.conf
from rlrun.run.recorder import read_metrics

PRESETS = Path(rlrun.conf.__file__).parent / "hparams_search"
RETURN_KEY = "env_runners/episode_return_mean"
EVAL_KEY = "evaluation/episode_return_mean"
STEPS_KEY = "num_env_steps_sampled_lifetime"
TARGET_WALL_RATIO = 0.40
TARGET_RETURN_RATIO = 0.95
FULL_TRIALS, FULL_TIMESTEPS = 16, 100_000  # the presets' own step budget
QUICK_TRIALS, QUICK_TIMESTEPS = 2, 10_000


@dataclass(frozen=True)
class Side:
    """One way of running the study: its preset, the sweeper key for the number of trials, where trials land."""

    name: str
    preset: str
    trials_key: str
    trial_glob: str


# ASHA first: the shorter side, whose numbers are in hand if a run on a busy machine has to be cut short.
SIDES = (
    Side("asha", "ppo_cartpole_asha", "hydra.sweeper.num_samples", "trial_*/metrics.jsonl"),
    Side("optuna", "ppo_cartpole_optuna", "hydra.sweeper.n_trials", "*/metrics.jsonl"),
)


@dataclass(frozen=True)
class Trial:
    """What one trial's metrics.jsonl says at its last iteration (eval_return: None without a final evaluation).

    train_s is its training loop's time (`time_total_s`): the sum over a side's trials, beside its wall time,
    shows what the sweep itself costs (start-up, scheduling, per-trial set-up). started and ended are the epoch
    times its first iteration began and its last one ended.
    """

    name: str
    overrides: list[str]
    iterations: int
    env_steps: int
    train_s: float
    train_return: float
    eval_return: float | None
    started: float
    ended: float


def read_trial(run_dir: Path) -> Trial:
    """The trial in `run_dir`: its last iteration's training return, and the evaluation that row carries, if any."""
    rows = read_metrics(run_dir)
    last = rows[-1]
    returns = [row[RETURN_KEY] for row in rows if _is_number(row.get(RETURN_KEY))]
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    return Trial(name=run_dir.name, overrides=[str(o) for o in overrides],
                 iterations=int(last["training_iteration"]), env_steps=int(last[STEPS_KEY]),
                 train_s=last["time_total_s"], train_return=returns[-1] if returns else math.nan,
                 eval_return=last[EVAL_KEY] if _is_number(last.get(EVAL_KEY)) else None,
                 started=rows[0]["timestamp"] - rows[0]["time_this_iter_s"], ended=last["timestamp"])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def run_side(side: Side, trials: int, timesteps: int, workdir: Path) -> dict[str, Any]:
    """The whole study of `side` in a fresh process; its wall time, peak memory and every trial's final numbers."""
    sweep_dir = workdir / side.name
    overrides = [f"hparams_search={side.preset}", f"{side.trials_key}={trials}", f"stop.timesteps={timesteps}",
                 f"hydra.sweep.dir={sweep_dir}", "logger.console=none"]
    watched = run_watched([RLRUN, *overrides], cwd=workdir)
    found = sorted((read_trial(path.parent) for path in sweep_dir.glob(side.trial_glob)), key=lambda t: t.name)
    if len(found) != trials:
        raise SystemExit(f"{side.name}: expected {trials} trial directories under {sweep_dir}, found {len(found)}")
    evaluated = [t.eval_return for t in found if t.eval_return is not None]
    # A scheduler's max_t can end a trial short of the step budget (e.g. max_t in iterations: an iteration samples
    # ~1020 steps, not exactly 1024): it then ran to the end of the study, but without a final evaluation.
    scheduler = OmegaConf.select(OmegaConf.load(PRESETS / f"{side.preset}.yaml"), "hydra.sweeper.scheduler")
    max_t = None if scheduler is None else scheduler.max_t
    in_env_steps = scheduler is not None and scheduler.time_attr == STEPS_KEY
    return {
        "side": side.name, "command": " ".join(["rlrun", *overrides[:3]]), "wall_s": watched.exit_s,
        "startup_s": min(t.started for t in found) - watched.start,
        "winddown_s": watched.start + watched.exit_s - max(t.ended for t in found),
        "peak_mb": watched.peak_mb, "trials": len(found), "iterations": sum(t.iterations for t in found),
        "train_s": sum(t.train_s for t in found),
        "full_budget": sum(t.env_steps >= timesteps for t in found), "max_t": max_t,
        "max_t_unit": "env steps" if in_env_steps else "it.",
        "at_max_t": None if max_t is None else sum(
            t.env_steps < timesteps and (t.env_steps if in_env_steps else t.iterations) >= max_t for t in found),
        "best_train_return": max(t.train_return for t in found),
        "best_eval_return": max(evaluated) if evaluated else None, "evaluated": len(evaluated),
        "per_trial": [asdict(t) for t in found],
    }


def print_report(results: dict[str, dict[str, Any]], trials: int, timesteps: int) -> dict[str, float]:
    """Markdown tables (per side, then ASHA / Optuna against the targets); returns the ratios."""
    print(f"PPO CartPole study: {trials} configs, {timesteps:,} env steps each; the configs differ between the sides "
          "(Optuna: TPE, sequential; ASHA: random search, concurrent), same space, count and budget.")
    print()
    print("| side | trials | to full budget | stopped at max_t | iterations | trials' train s | start-up s "
          "| wind-down s | wall s | peak MiB | best final training return "
          "| best final eval return (trials evaluated) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        at_max_t = "-" if r["max_t"] is None else f"{r['at_max_t']} (max_t {r['max_t']:,} {r['max_t_unit']})"
        best_eval = "-" if r["best_eval_return"] is None else f"{r['best_eval_return']:.1f}"
        cells = [r["side"], r["trials"], r["full_budget"], at_max_t, r["iterations"], f"{r['train_s']:.0f}",
                 f"{r['startup_s']:.1f}", f"{r['winddown_s']:.1f}", f"{r['wall_s']:.1f}", f"{r['peak_mb']:,.0f}",
                 f"{r['best_train_return']:.1f}",
                 f"{best_eval} ({r['evaluated']}/{r['trials']})"]
        print("| " + " | ".join(map(str, cells)) + " |")
    print()
    asha, optuna = results["asha"], results["optuna"]
    ratios = {"wall": asha["wall_s"] / optuna["wall_s"],
              "best_train_return": asha["best_train_return"] / optuna["best_train_return"]}
    checks = (("wall time", ratios["wall"], "<=", TARGET_WALL_RATIO, ratios["wall"] <= TARGET_WALL_RATIO),
              ("best final training return", ratios["best_train_return"], ">=", TARGET_RETURN_RATIO,
               ratios["best_train_return"] >= TARGET_RETURN_RATIO))
    print("| ASHA / Optuna | ratio | target | |")
    print("|---|---:|---|---|")
    for label, ratio, op, target, met in checks:
        print(f"| {label} | {ratio:.3f} | {op} {target:.2f} | {'met' if met else 'MISSED'} |")
    print()
    print("A final evaluation (10 greedy episodes) ends only the trials that reached the step budget: trials ASHA "
          "stopped, at a rung or at max_t, have none, so the training return is what both sides compare on.")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every number (per side and per trial) to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke test of this script, not a benchmark")
    args = parser.parse_args()
    trials, timesteps = (QUICK_TRIALS, QUICK_TIMESTEPS) if args.quick else (FULL_TRIALS, FULL_TIMESTEPS)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"sweep directories under {tmp}", flush=True)
        for side in SIDES:
            r = results[side.name] = run_side(side, trials, timesteps, Path(tmp))
            print(f"{side.name}: {r['wall_s']:.0f} s, best final training return {r['best_train_return']:.1f}",
                  flush=True)
    print()
    ratios = print_report(results, trials, timesteps)
    if args.json:
        args.json.write_text(json.dumps({
            "cpus": os.cpu_count(), "trials": trials, "timesteps": timesteps, "quick": args.quick,
            "targets": {"wall_ratio_max": TARGET_WALL_RATIO, "return_ratio_min": TARGET_RETURN_RATIO},
            "ratios": ratios, "sides": results,
        }, indent=2))


if __name__ == "__main__":
    main()

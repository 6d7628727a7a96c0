"""Asynchronous sampling: IMPALA and APPO beside PPO on the same resources (2 env runners x 16 envs, 1 learner).

Each algorithm runs its CartPole preset (`experiment=cartpole_ppo_fast`,
`cartpole_impala`, `cartpole_appo`) with `env_runners.num=2
env_runners.num_envs_per_runner=16 learners.num=1`, in a fresh process, on:

- CartPole-v1, stopped at a mean return of 450 or the step budget: does
  asynchrony cost learning per env step (env steps to 450)?
- SlowCartPole (scripts/slow_env.py: CartPole whose every step sleeps 1 ms, so
  sampling dominates) for a fixed step budget: does it keep the runners busy?

Per run, from its metrics.jsonl (rates over the training loop, Ray start-up excluded):

- sampled/s, trained/s: env steps sampled and trained per second (APPO trains
  each batch `circular_buffer_iterations_per_batch` times, so trained > sampled);
- runners busy: the fraction of the time the env runners spend sampling. PPO's
  runners sample exactly while its driver waits for the batch
  (`timers/env_runner_sampling_timer`), which also gives the rate at which these
  runners sample (PPO's steps / its sampling time). IMPALA's and APPO's runners
  sample at that same rate whenever they are busy, so their busy fraction is
  their sampled/s over it;
- policy lag: the mean over fragments, and the per-iteration maximum's median,
  90th percentile and maximum (learner updates between the weights that
  sampled a fragment and those it trains).

Targets (issue 9), on the slow env with medians over seeds: APPO's sampled/s
>= 85% of the runners' own rate and >= 1.15x PPO's sampled/s.

Usage: python scripts/bench_async.py [--seeds 0] [--algos ppo impala appo] [--quick] [overrides...]
`--quick` only checks that everything runs (tiny budgets, nothing learns).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from bench_common import median_of, run_rlrun

PRESETS = {"ppo": "cartpole_ppo_fast", "impala": "cartpole_impala", "appo": "cartpole_appo"}
RESOURCES = ["env_runners.num=2", "env_runners.num_envs_per_runner=16", "learners.num=1"]
THRESHOLD = 450.0
# name -> (overrides, full step budget, --quick step budget)
ENVS: dict[str, tuple[list[str], int, int]] = {
    "cartpole": (["env=cartpole", f"stop.return_mean={THRESHOLD:g}"], 300_000, 20_000),
    "slow": (["env.id=slow_env:SlowCartPole", "env.max_episode_steps=500", "stop.return_mean=null"], 60_000, 4_000),
}
RETURN_KEY = "env_runners/episode_return_mean"
LAG_MAX_KEY = "learner_group/policy_lag_max"


def measure(algo: str, env: str, seed: int, quick: bool, overrides: list[str], workdir: Path) -> dict[str, float]:
    """One run of `algo`'s preset on `env` in a fresh process; its rates, sampling time and lags."""
    env_overrides, budget, quick_budget = ENVS[env]
    run, rows = run_rlrun([f"experiment={PRESETS[algo]}", f"seed={seed}", *RESOURCES, *env_overrides,
                           f"stop.timesteps={quick_budget if quick else budget}", "evaluation.episodes=1",
                           "logger.tensorboard=false", *overrides], workdir / f"{env}-{algo}-seed{seed}")
    last = rows[-1]
    total = last["time_total_s"]
    hit = next((r for r in rows if r.get(RETURN_KEY, -1.0) >= THRESHOLD), None)
    lag_max = [r[LAG_MAX_KEY] for r in rows if LAG_MAX_KEY in r]
    lag_mean = [r["learner_group/policy_lag_mean"] for r in rows if LAG_MAX_KEY in r]
    nan = float("nan")
    return {
        "steps": last["num_env_steps_sampled_lifetime"],
        "sampled_per_s": last["num_env_steps_sampled_lifetime"] / total,
        "trained_per_s": last["num_env_steps_trained_lifetime"] / total,
        "sampling_s": sum(r["timers/env_runner_sampling_timer"] for r in rows),
        "total_s": total,
        "steps_to_450": hit["num_env_steps_sampled_lifetime"] if hit else nan,
        "return": last.get(RETURN_KEY, nan),
        "lag_mean": float(np.mean(lag_mean)) if lag_mean else nan,
        "lag_p50": float(np.percentile(lag_max, 50)) if lag_max else nan,
        "lag_p90": float(np.percentile(lag_max, 90)) if lag_max else nan,
        "lag_max": float(np.max(lag_max)) if lag_max else nan,
        "exit_s": run.exit_s,
        "peak_mb": run.peak_mb,
    }


def runner_rate(ppo_runs: list[dict[str, float]]) -> float:
    """The rate at which the env runners sample while sampling: PPO's steps over its sampling time (median)."""
    return median_of([{"rate": r["steps"] / r["sampling_s"]} for r in ppo_runs], "rate") if ppo_runs else float("nan")


def busy_fraction(algo: str, run: dict[str, float], rate: float) -> float:
    """PPO: its sampling time over the loop's; asynchronous algorithms: their sampled/s over the runners' rate."""
    return run["sampling_s"] / run["total_s"] if algo == "ppo" else run["sampled_per_s"] / rate


def report(env: str, results: dict[str, list[dict[str, Any]]], seeds: list[int]) -> None:
    rate = runner_rate(results.get("ppo", []))
    print(f"\n{env}: {' '.join(RESOURCES)}; the runners sample {rate:,.0f} env steps/s while busy (from PPO)")
    print(f"{'algo':>7} {'seed':>5} {'steps':>8} {'sampled/s':>10} {'trained/s':>10} {'busy':>6} "
          f"{'lag mean':>9} {'lag max p50/p90/max':>20} {'to 450':>8} {'return':>7} {'exit_s':>7} {'peak_MiB':>9}")
    for algo, runs in results.items():
        for seed, r in zip(seeds, runs):
            lags = "-" if r["lag_max"] != r["lag_max"] else f"{r['lag_p50']:g}/{r['lag_p90']:g}/{r['lag_max']:g}"
            lag_mean = "-" if r["lag_mean"] != r["lag_mean"] else f"{r['lag_mean']:.2f}"
            print(f"{algo:>7} {seed:>5} {r['steps']:>8,.0f} {r['sampled_per_s']:>10,.0f} {r['trained_per_s']:>10,.0f} "
                  f"{busy_fraction(algo, r, rate):>6.0%} {lag_mean:>9} {lags:>20} {r['steps_to_450']:>8,.0f} "
                  f"{r['return']:>7.1f} {r['exit_s']:>7.1f} {r['peak_mb']:>9,.0f}")
    if env == "slow" and {"ppo", "appo"} <= results.keys():
        appo, ppo = median_of(results["appo"], "sampled_per_s"), median_of(results["ppo"], "sampled_per_s")
        checks = {"of the runners' own rate": (appo / rate, 0.85), "x PPO's sampled/s": (appo / ppo, 1.15)}
        for name, (value, target) in checks.items():
            verdict = "met" if value >= target else "MISSED"
            print(f"target: APPO sampled/s {value:.2f} {name} (>= {target:g}): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--algos", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--envs", nargs="+", choices=list(ENVS), default=list(ENVS))
    parser.add_argument("--quick", action="store_true", help="tiny step budgets: checks that it runs, learns nothing")
    parser.add_argument("overrides", nargs="*", help="extra rlrun overrides for every run")
    args = parser.parse_args()
    # The rlrun processes and their Ray workers import the slow env from this folder.
    scripts = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [scripts, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            results = {a: [measure(a, env, s, args.quick, args.overrides, Path(tmp)) for s in args.seeds]
                       for a in args.algos}
            report(env, results, args.seeds)


if __name__ == "__main__":
    main()

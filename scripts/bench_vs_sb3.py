"""Command to exit: rlrun's CartPole preset beside Stable-Baselines3 + rl-zoo3's tuned PPO, on this machine, in one run.

For each seed, one after the other (so both see the same machine load):

- rlrun: `rlrun experiment=cartpole_ppo_fast seed=S stop.return_mean=475` in .venv
  (what `make run` runs, stopped at the threshold), timed from process spawn to exit;
- SB3: scripts/sb3_cartpole_ppo.py in .venv-bench (rl-zoo3's hyperparameters from
  its own hyperparams/ppo.yml, a callback that stops at the same criterion), timed
  the same way.

Both stop when the mean return of the last 100 training episodes reaches the
threshold. It prints the per-seed times, the medians and their ratio against the
target: rlrun's median at most a quarter of SB3's.

SB3 needs an older stack than rlrun's, so it lives in its own venv, .venv-bench,
which this script creates on first use (CPU torch first, as `make install` does,
then pinned stable-baselines3 and rl_zoo3; this needs the package index).

Usage: python scripts/bench_vs_sb3.py [--seeds 0 1 2 3 4] [--threshold 475]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_cartpole import solve
from bench_common import BENCH_PY, ensure_bench_venv, median_of, run_watched

SB3_SCRIPT = Path(__file__).with_name("sb3_cartpole_ppo.py")
TARGET_RATIO = 0.25


def run_sb3(seed: int, threshold: float) -> dict[str, float]:
    """One SB3 run in a fresh process: spawn-to-exit seconds and env steps to the threshold."""
    run = run_watched([str(BENCH_PY), str(SB3_SCRIPT), f"--seed={seed}", f"--threshold={threshold}"])
    result = run.last_json()
    return {"exit_s": run.exit_s, "solved": float(result["solved"]), "steps": result["steps"] or float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threshold", type=float, default=475.0)
    args = parser.parse_args()
    ensure_bench_venv()
    rlrun_runs, sb3_runs = [], []
    print(f"CartPole-v1, spawn to exit, stop at mean return {args.threshold:g} over the last 100 training episodes")
    print(f"{'seed':>5} {'rlrun_s':>8} {'rlrun_steps':>12} {'sb3_s':>8} {'sb3_steps':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rlrun_runs.append(solve("embedded", seed, args.threshold, [], Path(tmp)))
            sb3_runs.append(run_sb3(seed, args.threshold))
            r, s = rlrun_runs[-1], sb3_runs[-1]
            print(f"{seed:>5} {r['exit_s']:>8.2f} {r['steps']:>12,.0f} {s['exit_s']:>8.2f} {s['steps']:>10,.0f}",
                  flush=True)
    for name, runs in (("rlrun", rlrun_runs), ("sb3", sb3_runs)):
        solved = sum(int(r["solved"]) for r in runs)
        print(f"{name:>5}: median spawn-to-exit {median_of(runs, 'exit_s'):.2f} s, {solved}/{len(runs)} solved")
    ratio = median_of(rlrun_runs, "exit_s") / median_of(sb3_runs, "exit_s")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio rlrun / sb3: {ratio:.3f} (target <= {TARGET_RATIO}): {verdict}")


if __name__ == "__main__":
    main()

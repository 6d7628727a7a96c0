"""Time to solve CartPole-v1 with the tuned preset, measured from process start.

For each seed, runs `rlrun experiment=cartpole_ppo_fast seed=S` in a fresh
process and reads its metrics.jsonl: the solve time is the wall-clock stamp of
the first iteration whose mean return over the last 100 episodes reaches 475,
minus the moment the process was spawned (so imports and start-up count).

Usage: python scripts/bench_cartpole.py [--seeds 0 1 2] [--threshold 475] [extra overrides...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlrun.run.recorder import read_metrics

RLRUN = str(Path(sys.executable).with_name("rlrun"))
RETURN_KEY = "env_runners/episode_return_mean"


def solve(seed: int, threshold: float, overrides: list[str], workdir: Path) -> dict[str, float]:
    run_dir = workdir / f"seed{seed}"
    cmd = [RLRUN, "experiment=cartpole_ppo_fast", f"seed={seed}", "logger.console=none",
           f"hydra.run.dir={run_dir}", *overrides]
    start = time.time()
    subprocess.run(cmd, check=True, cwd=workdir)
    rows = read_metrics(run_dir)
    hit = next((r for r in rows if r.get(RETURN_KEY, -1.0) >= threshold), None)
    first = rows[0]
    result = {
        "startup_s": first["timestamp"] - first["time_this_iter_s"] - start,
        "steps_per_s": rows[-1]["num_env_steps_sampled_lifetime"] / rows[-1]["time_total_s"],
    }
    if hit is None:
        return {**result, "solved": 0.0, "time_s": float("nan"), "steps": float("nan")}
    return {**result, "solved": 1.0, "time_s": hit["timestamp"] - start, "steps": hit["num_env_steps_sampled_lifetime"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("overrides", nargs="*", help="extra rlrun overrides, e.g. env_runners.num=2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [solve(s, args.threshold, args.overrides, Path(tmp)) for s in args.seeds]
    extra = " ".join(args.overrides)
    print(f"CartPole-v1 time to mean return {args.threshold:g} (experiment=cartpole_ppo_fast {extra})")
    print(f"{'seed':>6} {'solved':>7} {'time_s':>8} {'env_steps':>10} {'steps/s':>9} {'startup_s':>10}")
    for seed, r in zip(args.seeds, results):
        print(f"{seed:>6} {'yes' if r['solved'] else 'NO':>7} {r['time_s']:>8.2f} {r['steps']:>10,.0f} "
              f"{r['steps_per_s']:>9,.0f} {r['startup_s']:>10.2f}")
    times = [r["time_s"] for r in results if r["solved"]]
    if times:
        print(f"time_s  min {min(times):.2f}  median {statistics.median(times):.2f}  max {max(times):.2f}  "
              f"({len(times)}/{len(results)} seeds solved)")
    steps = [r["steps"] for r in results if r["solved"]]
    if steps:
        print(f"env steps  min {min(steps):,.0f}  median {statistics.median(steps):,.0f}  max {max(steps):,.0f}")


if __name__ == "__main__":
    main()

"""Time to solve CartPole-v1 with the tuned preset, embedded mode beside Ray mode, measured from process start.

For each mode and seed, runs `rlrun experiment=cartpole_ppo_fast seed=S <mode overrides>`
in a fresh process, samples the memory of its whole process tree (Ray's GCS,
raylet and actors included) while it runs, and reads its metrics.jsonl:

- start-up: process spawn to the start of the first sample (first iteration's
  timestamp minus its duration);
- steps/s: env steps over training time (start-up excluded);
- time to solve: spawn to the first iteration whose mean return over the last
  100 episodes reaches the threshold;
- time to exit: spawn to the end of the process, which is what a user waits for
  (the run stops at the threshold, so this adds the final evaluation, checkpoint,
  learning-curve plot and interpreter exit to the time to solve);
- peak memory: the largest sum of PSS (proportional set size, so shared pages
  such as Ray's object store count once) over the process tree.

It also times Ray's own start-up (`ray.init` + `ray.shutdown` in a fresh
process) to check the target: Ray mode adds at most Ray's start-up cost plus 30%
of embedded mode's steady-state (post-start-up) time to solve.

Usage: python scripts/bench_cartpole.py [--seeds 0 1 2] [--threshold 475] [--modes embedded ray] [overrides...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import median_of, run_rlrun

RETURN_KEY = "env_runners/episode_return_mean"
# Ray mode splits the preset's 16 envs over 2 runners, so both modes sample the same batches.
MODES = {"embedded": [], "ray": ["env_runners.num=2", "env_runners.num_envs_per_runner=8", "learners.num=2"]}
RAY_STARTUP = "import ray; ray.init(address='local', include_dashboard=False, logging_level='ERROR'); ray.shutdown()"


def solve(mode: str, seed: int, threshold: float, overrides: list[str], workdir: Path) -> dict[str, float]:
    """One `rlrun experiment=cartpole_ppo_fast` run in a fresh process, stopped at the threshold."""
    run, rows = run_rlrun(["experiment=cartpole_ppo_fast", f"seed={seed}", f"stop.return_mean={threshold}",
                           *MODES[mode], *overrides], workdir / f"{mode}-seed{seed}")
    hit = next((r for r in rows if r.get(RETURN_KEY, -1.0) >= threshold), None)
    first = rows[0]
    result = {
        "startup_s": first["timestamp"] - first["time_this_iter_s"] - run.start,
        "steps_per_s": rows[-1]["num_env_steps_sampled_lifetime"] / rows[-1]["time_total_s"],
        "peak_mb": run.peak_mb,
        "exit_s": run.exit_s,
        "solved": 0.0, "time_s": float("nan"), "steps": float("nan"),
    }
    if hit is not None:
        result.update(solved=1.0, time_s=hit["timestamp"] - run.start, steps=hit["num_env_steps_sampled_lifetime"])
    return result


def ray_startup_s(repeats: int = 3) -> float:
    """Median wall time of starting and stopping a local Ray instance in a fresh process (imports included)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", RAY_STARTUP], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("overrides", nargs="*", help="extra rlrun overrides for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {m: [solve(m, s, args.threshold, args.overrides, Path(tmp)) for s in args.seeds] for m in args.modes}
    extra = " ".join(args.overrides)
    print(f"CartPole-v1 time to mean return {args.threshold:g} (experiment=cartpole_ppo_fast {extra})")
    print("time_s: spawn to the solving iteration; exit_s: spawn to process exit (what a user waits for)")
    print(f"{'mode':>9} {'seed':>5} {'solved':>7} {'time_s':>7} {'exit_s':>7} {'env_steps':>10} {'steps/s':>8} "
          f"{'startup_s':>10} {'peak_MiB':>9}")
    for mode, runs in results.items():
        for seed, r in zip(args.seeds, runs):
            print(f"{mode:>9} {seed:>5} {'yes' if r['solved'] else 'NO':>7} {r['time_s']:>7.2f} {r['exit_s']:>7.2f} "
                  f"{r['steps']:>10,.0f} {r['steps_per_s']:>8,.0f} {r['startup_s']:>10.2f} {r['peak_mb']:>9,.0f}")
    print("medians:")
    for mode, runs in results.items():
        solved = sum(int(r["solved"]) for r in runs)
        print(f"{mode:>9}  time_s {median_of(runs, 'time_s'):.2f} ({solved}/{len(runs)} solved)  "
              f"exit_s {median_of(runs, 'exit_s'):.2f}  steps/s {median_of(runs, 'steps_per_s'):,.0f}  "
              f"startup_s {median_of(runs, 'startup_s'):.2f}  peak_MiB {median_of(runs, 'peak_mb'):,.0f}")
    if {"embedded", "ray"} <= results.keys():
        ray_init = ray_startup_s()
        emb, ray_runs = results["embedded"], results["ray"]
        steady = median_of(emb, "time_s") - median_of(emb, "startup_s")
        added = median_of(ray_runs, "time_s") - median_of(emb, "time_s")
        budget = ray_init + 0.3 * steady
        verdict = "met" if added <= budget else "MISSED"
        print(f"Ray start-up alone (init + shutdown, fresh process): {ray_init:.2f} s")
        print(f"Ray mode adds {added:.2f} s to the median time to solve; target <= {ray_init:.2f} + 0.3 x {steady:.2f} "
              f"= {budget:.2f} s: {verdict}")


if __name__ == "__main__":
    main()

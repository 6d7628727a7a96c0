"""Recurrent PPO on CartPole without velocities: rlrun beside sb3-contrib's RecurrentPPO, and what the LSTM costs.

Two measurements, in one script run on one machine:

1. **Time to the goal.** For each seed, one after the other (so both see the same
   machine load): `rlrun experiment=stateless_cartpole_ppo_lstm seed=S` in .venv (it
   stops when the mean return of the last 100 training episodes reaches 475, or at
   150k env steps), and scripts/sb3_recurrent_ppo.py in .venv-bench (sb3-contrib's
   RecurrentPPO with rl-zoo3's tuned CartPoleNoVel-v1 entry, stopped by the same
   criterion or at that entry's 100k budget), both timed from process spawn to exit.
   Target: rlrun's median at most half of SB3's. An SB3 run that ends its budget
   below the goal has no time to the goal; its spawn-to-exit time, a lower bound,
   stands in for it, and the ratio is then an upper bound.
2. **What the memory costs.** Training env steps per second (env steps over
   training time, start-up excluded) of the preset over a fixed 60k env steps, and
   of the same run with the MLP in place of the LSTM (same envs, batch, minibatches
   and epochs). Target: the LSTM at least half the MLP's rate.

Usage: python scripts/bench_recurrent.py [--seeds 0 1 2] [--throughput-steps 60000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_common import BENCH_PY, ensure_bench_venv, machine, median_of, run_rlrun, run_watched

from rlrun.config.schema import ModelSchema

PRESET = "experiment=stateless_cartpole_ppo_lstm"
RETURN_KEY = "env_runners/episode_return_mean"
SB3_SCRIPT = Path(__file__).with_name("sb3_recurrent_ppo.py")
TIME_RATIO_TARGET = 0.5
RATE_RATIO_TARGET = 0.5
# The preset with the MLP instead of the LSTM: the recurrent keys back at their defaults, as validation requires.
MLP = ["model.use_lstm=false", f"model.lstm_cell_size={ModelSchema().lstm_cell_size}",
       f"model.max_seq_len={ModelSchema().max_seq_len}"]


def rlrun_to_goal(seed: int, threshold: float, workdir: Path) -> dict[str, float]:
    """The preset for one seed: spawn-to-exit seconds and env steps at its first iteration at the threshold."""
    run, rows = run_rlrun([PRESET, f"seed={seed}", f"stop.return_mean={threshold}"], workdir / f"lstm-seed{seed}")
    hit = next((r for r in rows if r.get(RETURN_KEY, float("-inf")) >= threshold), None)
    return {"solved": float(hit is not None), "exit_s": run.exit_s if hit else float("nan"),
            "run_s": run.exit_s, "steps": hit["num_env_steps_sampled_lifetime"] if hit else float("nan"),
            "final_return": rows[-1].get(RETURN_KEY, float("nan"))}


def sb3_to_goal(seed: int, threshold: float) -> dict[str, float]:
    """sb3-contrib's RecurrentPPO for one seed, timed the same way."""
    run = run_watched([str(BENCH_PY), str(SB3_SCRIPT), f"--seed={seed}", f"--threshold={threshold}"])
    result = run.last_json()
    solved = bool(result["solved"])
    return {"solved": float(solved), "exit_s": run.exit_s if solved else float("nan"), "run_s": run.exit_s,
            "steps": result["steps"] if solved else float("nan"), "final_return": result["final_return"]}


def steps_per_s(model: list[str], seed: int, steps: int, workdir: Path) -> float:
    """Training env steps per second of the preset (with `model` overrides) over `steps` env steps, no early stop."""
    name = "mlp" if model else "lstm"
    _, rows = run_rlrun([PRESET, *model, f"seed={seed}", "stop.return_mean=null", f"stop.timesteps={steps}"],
                        workdir / f"rate-{name}-seed{seed}")
    first = rows[0]
    return ((rows[-1]["num_env_steps_sampled_lifetime"] - first["num_env_steps_sampled_lifetime"])
            / (rows[-1]["time_total_s"] - first["time_total_s"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--throughput-steps", type=int, default=60_000)
    args = parser.parse_args()
    ensure_bench_venv()
    print(machine())
    print(f"CartPole without velocities, spawn to exit, stop at mean return {args.threshold:g} over the last 100 "
          "training episodes (rlrun: env=stateless_cartpole; SB3: rl-zoo3's CartPoleNoVel-v1)")
    print(f"{'seed':>5} {'rlrun_s':>8} {'rlrun_steps':>12} {'sb3_s':>8} {'sb3_steps':>10} {'sb3_final':>10}")
    rlrun_runs, sb3_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rlrun_runs.append(rlrun_to_goal(seed, args.threshold, Path(tmp)))
            sb3_runs.append(sb3_to_goal(seed, args.threshold))
            r, s = rlrun_runs[-1], sb3_runs[-1]
            sb3_s = f"{s['exit_s']:.1f}" if s["solved"] else f">{s['run_s']:.1f}"
            print(f"{seed:>5} {r['exit_s']:>8.1f} {r['steps']:>12,.0f} {sb3_s:>8} {s['steps']:>10,.0f} "
                  f"{s['final_return']:>10.1f}", flush=True)
        rates = {name: [steps_per_s(model, seed, args.throughput_steps, Path(tmp)) for seed in args.seeds]
                 for name, model in (("lstm", []), ("mlp", MLP))}
    for name, runs in (("rlrun", rlrun_runs), ("sb3", sb3_runs)):
        solved = sum(int(r["solved"]) for r in runs)
        print(f"{name:>5}: median spawn-to-exit to the goal {median_of(runs, 'exit_s'):.1f} s, "
              f"median env steps {median_of(runs, 'steps'):,.0f}, {solved}/{len(runs)} solved")
    # An SB3 run that ended its budget below the goal counts with its whole run time, a lower bound on its time to
    # the goal: the ratio is then an upper bound.
    bound = any(not r["solved"] for r in sb3_runs)
    sb3_time = median_of([{"t": r["exit_s"] if r["solved"] else r["run_s"]} for r in sb3_runs], "t")
    ratio = median_of(rlrun_runs, "exit_s") / sb3_time
    print(f"time ratio rlrun / sb3: {'<= ' if bound else ''}{ratio:.3f} (target <= {TIME_RATIO_TARGET}): "
          f"{'met' if ratio <= TIME_RATIO_TARGET else 'MISSED'}"
          + (" (SB3's unsolved runs count with their whole run time)" if bound else ""))
    lstm, mlp = (median_of([{"r": r} for r in rates[k]], "r") for k in ("lstm", "mlp"))
    print(f"training env steps/s over {args.throughput_steps:,} env steps (median of seeds): LSTM {lstm:,.0f}, "
          f"MLP {mlp:,.0f}; ratio {lstm / mlp:.3f} (target >= {RATE_RATIO_TARGET}): "
          f"{'met' if lstm / mlp >= RATE_RATIO_TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()

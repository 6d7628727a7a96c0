"""rlrun's off-policy presets beside Stable-Baselines3 + rl-zoo3 on this machine, in one run; then the replay buffers.

For each preset and seed, one after the other (so both sides see the same machine load):

- rlrun: `rlrun experiment=<preset> seed=S` in .venv, to the preset's step budget;
- SB3: scripts/sb3_offpolicy.py in .venv-bench, rl-zoo3's tuned hyperparameters for
  the same algorithm and env (read from the installed rl_zoo3's hyperparams/dqn.yml,
  sac.yml and td3.yml), the same seed, for as many env steps as the rlrun run sampled
  (SB3's DQN collects `train_freq` = 256 steps at a time, so it may take up to 255 more).

Each run is a fresh process timed from spawn to exit (what a user waits for; both
sides end with a final evaluation of 10 deterministic episodes, as the presets'
goals are set), with the peak PSS of its process tree. Ten episodes are too few to
compare two returns: Pendulum's start state alone moves an episode's return between
about 0 and -350, so one seed's 10-episode mean varies by about +-30 with the draw of
starts. So each side's final policy then plays `--return-episodes` (100) more greedy
episodes in a separate, untimed process (`rlrun-eval` on the run's final checkpoint;
sb3_offpolicy.py --load on the saved model), and the return comparison uses their mean. Gradient updates/s
count over the training loop: rlrun's learner updates over `time_total_s`, SB3's
`_n_updates` over its `learn` call. Both sides use one torch thread (rlrun's
learner: `learners.num_cpus_per_learner` = 1; SB3: rl-zoo3's `--num-threads 1`),
so the ratio compares implementations, not thread settings: torch's default of a
thread per core made SB3's SAC ten times slower on a busy 2-core machine
(`--sb3-num-threads -1` measures that default). It prints markdown tables, per
seed and as medians with the ratios rlrun / SB3, against the targets of issue 8:
at most half of SB3's wall time, and a final return (the 100-episode mean) at least SB3's.

Then the replay buffers, in this process, filled with real fragments of each
preset's env (4 sub-envs x 64 steps from an EnvRunner with an untrained policy):
add throughput in transitions/s (a fragment's env steps over the median time to add
one, while adding twice the capacity, so FIFO eviction is included), the median
time to sample 256 transitions with 3-step returns and to update 256 priorities,
and the storage bytes per transition.

A preset whose yaml does not exist (yet) is skipped with a note. `--quick` checks
the script end to end (2k env steps, seed 0, a small buffer, few repetitions); its
numbers are no benchmark.

Usage: python scripts/bench_offpolicy.py [--presets cartpole_dqn pendulum_sac pendulum_td3] [--seeds 0 1 2]
       [--return-episodes 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_common import BENCH_PY, RLRUN, ensure_bench_venv, median_of, run_rlrun, run_watched

import rlrun.conf
from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.columns import Columns
from rlrun.data.replay_buffers import REPLAY_BUFFERS
from rlrun.env import EnvRunner

SB3_SCRIPT = Path(__file__).with_name("sb3_offpolicy.py")
EXPERIMENTS = Path(rlrun.conf.__file__).parent / "experiment"
TARGET_WALL_RATIO = 0.5
# Replay micro-benchmarks: fragments as env runners deliver them, the sample of 256, the DQN preset's n_step.
FRAGMENT_ENVS, FRAGMENT_STEPS, NUM_FRAGMENTS = 4, 64, 16
SAMPLE_SIZE, N_STEP = 256, 3


@dataclass(frozen=True)
class Preset:
    """The SB3 / rl-zoo3 counterpart of an rlrun preset: algorithm name and gymnasium id."""

    algo: str
    env_id: str


PRESETS = {"cartpole_dqn": Preset("dqn", "CartPole-v1"), "pendulum_sac": Preset("sac", "Pendulum-v1"),
           "pendulum_td3": Preset("td3", "Pendulum-v1")}


@dataclass(frozen=True)
class Budget:
    """How much each part runs: the full benchmark, or `--quick`'s smoke test."""

    seeds: list[int]
    timesteps: int | None  # None: each preset's own step budget
    buffer_capacity: int
    repeats: int
    return_episodes: int


def run_rlrun_preset(name: str, seed: int, timesteps: int | None, workdir: Path,
                     return_episodes: int) -> dict[str, float]:
    """`rlrun experiment=<name> seed=<seed>` to its budget (or `timesteps` env steps) in a fresh process, then
    `return_episodes` greedy episodes of its final checkpoint with `rlrun-eval` (untimed)."""
    stop = [f"stop.timesteps={timesteps}"] if timesteps else []
    run_dir = workdir / f"{name}-seed{seed}"
    run, rows = run_rlrun([f"experiment={name}", f"seed={seed}", *stop], run_dir)
    last = rows[-1]
    run_watched([str(Path(RLRUN).with_name("rlrun-eval")), f"checkpoint={run_dir}/checkpoints/final",
                 f"episodes={return_episodes}"])
    report = json.loads(max(run_dir.glob("eval_*.json"), key=lambda p: p.stat().st_mtime).read_text())
    return {"steps": last["num_env_steps_sampled_lifetime"], "exit_s": run.exit_s, "peak_mb": run.peak_mb,
            "eval_return": last["evaluation/episode_return_mean"],
            "updates_per_s": last["num_learner_updates_lifetime"] / last["time_total_s"],
            **return_stats(report["episode_returns"])}


def run_sb3(preset: Preset, seed: int, steps: int, num_threads: int, workdir: Path,
            return_episodes: int) -> dict[str, float]:
    """SB3 with rl-zoo3's hyperparameters for `steps` env steps in a fresh process of the bench venv, then
    `return_episodes` greedy episodes of the saved model in another (untimed)."""
    script = [str(BENCH_PY), str(SB3_SCRIPT), f"--algo={preset.algo}", f"--env={preset.env_id}", f"--seed={seed}"]
    model = workdir / f"sb3-{preset.algo}-seed{seed}.zip"
    run = run_watched([*script, f"--timesteps={steps}", f"--num-threads={num_threads}", f"--save={model}"])
    result = run.last_json()
    returns = run_watched([*script, f"--load={model}", f"--eval-episodes={return_episodes}"]).last_json()
    return {"steps": result["steps"], "exit_s": run.exit_s, "peak_mb": run.peak_mb,
            "eval_return": result["eval_return"], "updates_per_s": result["updates"] / result["learn_s"],
            **return_stats(returns["eval_returns"])}


def return_stats(returns: list[float]) -> dict[str, float]:
    """Mean of the episodes' returns and its standard error."""
    return {"return_mean": statistics.mean(returns),
            "return_se": statistics.stdev(returns) / len(returns) ** 0.5 if len(returns) > 1 else float("nan")}


def print_runs(results: dict[str, dict[str, list[dict[str, float]]]], seeds: list[int], episodes: int) -> None:
    """Per-seed markdown table."""
    print(f"| preset | seed | side | env steps | wall s | eval return (10) | return ({episodes}) ± se | updates/s "
          "| peak MiB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, sides in results.items():
        for i, seed in enumerate(seeds):
            for side, runs in sides.items():
                r = runs[i]
                print(f"| {name} | {seed} | {side} | {r['steps']:,.0f} | {r['exit_s']:.1f} | {r['eval_return']:.1f} "
                      f"| {r['return_mean']:.1f} ± {r['return_se']:.1f} | {r['updates_per_s']:,.0f} "
                      f"| {r['peak_mb']:,.0f} |")


def print_ratios(results: dict[str, dict[str, list[dict[str, float]]]], episodes: int) -> None:
    """Medians over seeds, rlrun / SB3, with the issue's targets."""
    print(f"| preset | wall s rlrun / SB3 | ratio (target <= {TARGET_WALL_RATIO}) | return ({episodes}) rlrun / SB3 "
          "| return >= SB3 | updates/s rlrun / SB3 (ratio) | peak MiB rlrun / SB3 (ratio) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, sides in results.items():
        ours, ref = sides["rlrun"], sides["sb3"]
        wall = median_of(ours, "exit_s") / median_of(ref, "exit_s")
        wall_verdict = "met" if wall <= TARGET_WALL_RATIO else "MISSED"
        ret_ours, ret_ref = median_of(ours, "return_mean"), median_of(ref, "return_mean")
        seeds_at_least = sum(o["return_mean"] >= r["return_mean"] for o, r in zip(ours, ref))
        ret_verdict = f"{'met' if ret_ours >= ret_ref else 'MISSED'} ({seeds_at_least}/{len(ours)} seeds)"
        cells = [f"{median_of(ours, 'exit_s'):.1f} / {median_of(ref, 'exit_s'):.1f}", f"{wall:.2f} {wall_verdict}",
                 f"{ret_ours:.1f} / {ret_ref:.1f}", ret_verdict]
        for key, fmt in (("updates_per_s", ",.0f"), ("peak_mb", ",.0f")):
            a, b = median_of(ours, key), median_of(ref, key)
            cells.append(f"{a:{fmt}} / {b:{fmt}} ({a / b:.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def env_fragments(env_id: str) -> list[dict[str, np.ndarray]]:
    """Time-major fragments of `env_id` as an env runner delivers them (autoreset rows included)."""
    config = PPOConfig().environment(env_id).env_runners(num_envs_per_env_runner=FRAGMENT_ENVS)
    runner = EnvRunner(config.env_runner_spec())
    return [runner.sample(num_timesteps=FRAGMENT_ENVS * FRAGMENT_STEPS) for _ in range(NUM_FRAGMENTS)]


def bench_buffer(kind: str, fragments: list[dict[str, np.ndarray]], capacity: int, repeats: int) -> dict[str, float]:
    """Median times of adding a fragment (over twice the capacity, so with eviction), sampling, updating priorities.

    Medians of single calls, not totals: on a shared machine one preemption would dominate a short total.
    """
    buffer = REPLAY_BUFFERS[kind](capacity, seed=0, num_envs=FRAGMENT_ENVS)
    add_s, steps = [], []
    while sum(steps) < 2 * capacity:
        fragment = fragments[len(steps) % len(fragments)]
        add_s.append(timed(buffer.add, fragment))
        steps.append(int(fragment[Columns.LOSS_MASK].sum()))
    td_errors = np.random.default_rng(0).standard_normal(SAMPLE_SIZE)
    sample_s, update_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        batch = buffer.sample(SAMPLE_SIZE, n_step=N_STEP, gamma=0.99, beta=0.4)
        sample_s.append(time.perf_counter() - start)
        update_s.append(timed(buffer.update_priorities, batch[Columns.INDICES], td_errors))
    return {"bytes": buffer.bytes_per_env_step(), "add_per_s": statistics.mean(steps) / statistics.median(add_s),
            "sample_us": 1e6 * statistics.median(sample_s), "update_us": 1e6 * statistics.median(update_s)}


def timed(call: Callable[..., object], *args: object) -> float:
    """Seconds one `call(*args)` takes."""
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


def print_replay_bench(env_ids: list[str], capacity: int, repeats: int) -> None:
    print(f"Replay buffers: capacity {capacity:,} env steps, fragments of {FRAGMENT_ENVS} envs x {FRAGMENT_STEPS} "
          f"steps; sample {SAMPLE_SIZE} with {N_STEP}-step returns; medians of {repeats}")
    print()
    print(f"| env | buffer | bytes / transition | add transitions/s | sample {SAMPLE_SIZE} µs "
          f"| update {SAMPLE_SIZE} priorities µs |")
    print("|---|---|---:|---:|---:|---:|")
    for env_id in env_ids:
        fragments = env_fragments(env_id)
        for kind in REPLAY_BUFFERS:
            r = bench_buffer(kind, fragments, capacity, repeats)
            update = f"{r['update_us']:,.0f}" if kind == "prioritized" else "-"
            print(f"| {env_id} | {kind} | {r['bytes']:.0f} | {r['add_per_s']:,.0f} | {r['sample_us']:,.0f} "
                  f"| {update} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", help="default 0 1 2 (--quick: 0)")
    parser.add_argument("--timesteps", type=int, help="env steps per run (default: each preset's budget)")
    parser.add_argument("--sb3-num-threads", type=int, default=1,
                        help="torch threads of the SB3 runs (default 1, as rlrun's learner; -1: torch's default)")
    parser.add_argument("--quick", action="store_true", help="a smoke test of this script, not a benchmark")
    parser.add_argument("--return-episodes", type=int,
                        help="greedy episodes of each final policy for the return comparison (default 100; --quick: 5)")
    args = parser.parse_args()
    budget = (Budget([0], 2000, 10_000, 100, 5) if args.quick else Budget([0, 1, 2], None, 100_000, 1000, 100))
    episodes = args.return_episodes or budget.return_episodes
    seeds, timesteps = args.seeds or budget.seeds, args.timesteps or budget.timesteps
    names = []
    for name in args.presets:
        if (EXPERIMENTS / f"{name}.yaml").exists():
            names.append(name)
        else:
            print(f"note: skipping {name}: {EXPERIMENTS / name}.yaml does not exist yet")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; torch threads: SB3 {args.sb3_num_threads} "
          "(-1: torch's default), rlrun 1 (learners.num_cpus_per_learner)")
    if names:
        ensure_bench_venv()
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                results[name] = {"rlrun": [], "sb3": []}
                for seed in seeds:
                    ours = run_rlrun_preset(name, seed, timesteps, Path(tmp), episodes)
                    results[name]["rlrun"].append(ours)
                    results[name]["sb3"].append(run_sb3(PRESETS[name], seed, int(ours["steps"]), args.sb3_num_threads,
                                                        Path(tmp), episodes))
                    print(f"{name} seed {seed}: done", flush=True)
        print()
        print_runs(results, seeds, episodes)
        print()
        print_ratios(results, episodes)
        print()
    print_replay_bench(sorted({PRESETS[name].env_id for name in args.presets}), budget.buffer_capacity, budget.repeats)


if __name__ == "__main__":
    main()

"""Offline training speed: dataset rows trained per second from disk (BC), and peak memory while streaming.

1. Throughput. `rlrun algo=bc offline.dataset=<d>` with `learners.num` = 0, 1, 2 on a
   CartPole-sized dataset (obs 4 floats, Discrete(2)) and a Pendulum-sized one (obs 3
   floats, Box(1)), each `--episodes` episodes of 200 steps, one pass over it at the
   preset's batch of 256 rows (every row trained is read from disk once; the default
   `offline.memory_rows` holds the whole dataset). Rows/s = the last metrics.jsonl row's
   `num_env_steps_trained_lifetime` / `time_total_s`: the sum of the training iterations'
   times, which leaves out process and Ray start-up, the evaluation (1 episode, at the
   end) and the final checkpoint. Median of `--runs` runs; spawn-to-exit wall time beside it.
2. Memory. The peak PSS of the whole process tree (scripts/bench_common.py) of one
   `learners.num=0` pass over a Pendulum-sized dataset of `--memory-episodes` episodes
   with `offline.memory_rows` a tenth of its rows (streamed in ten chunks), and of the
   same run with `memory_rows` >= its rows (the whole dataset in memory at once), with
   the dataset's size on disk. These runs use batches of `--memory-batch-size` rows to
   keep them short; the batch size barely changes the memory.

The datasets are synthetic, written with rlrun's own writer into a temporary
directory: observations and actions drawn uniformly from the real envs' spaces
(unbounded observation dimensions within +-10), random rewards, every episode
truncated at 200 steps. The env comes from the dataset's metadata, as a user's run
gets it. Each run is a fresh `rlrun` process (bench_common.run_rlrun).

`--quick` checks the script end to end in tiny sizes; its numbers are no benchmark.

Usage: python scripts/bench_offline.py [--runs 3] [--episodes 256] [--memory-episodes 5120] [--json PATH] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from bench_common import median_of, run_rlrun

from rlrun.data.offline.writer import RecordedEpisode, write_dataset

EPISODE_STEPS = 200
BATCH_SIZE = 256  # algo=bc's default train_batch_size (and experiment=cartpole_bc's)
OBS_BOUND = 10.0  # where an observation dimension is unbounded, draw it from [-OBS_BOUND, OBS_BOUND]
SIZES = {"CartPole-v1": "CartPole-sized (obs 4, Discrete(2))", "Pendulum-v1": "Pendulum-sized (obs 3, Box(1))"}
MEMORY_ENV = "Pendulum-v1"
MEMORY_CHUNKS = 10  # the streamed run's memory bound is 1/MEMORY_CHUNKS of the dataset


@dataclass(frozen=True)
class Budget:
    """How much each part runs: the benchmark's defaults, or `--quick`'s smoke test."""

    runs: int
    episodes: int
    memory_episodes: int
    memory_batch_size: int
    learners: list[int]


DEFAULT = Budget(runs=3, episodes=256, memory_episodes=5120, memory_batch_size=1024, learners=[0, 1, 2])
QUICK = Budget(runs=1, episodes=8, memory_episodes=40, memory_batch_size=256, learners=[0, 2])


def synthetic_episodes(env_id: str, num_episodes: int, seed: int) -> list[RecordedEpisode]:
    """`num_episodes` episodes of EPISODE_STEPS random steps in `env_id`'s spaces (drawn in one go, then split)."""
    env = gym.make(env_id)
    obs_space, action_space = env.observation_space, env.action_space
    env.close()
    rng = np.random.default_rng(seed)
    low, high = np.clip(obs_space.low, -OBS_BOUND, OBS_BOUND), np.clip(obs_space.high, -OBS_BOUND, OBS_BOUND)
    obs = rng.uniform(low, high, (num_episodes, EPISODE_STEPS + 1, *obs_space.shape)).astype(np.float32)
    shape = (num_episodes, EPISODE_STEPS)
    if isinstance(action_space, gym.spaces.Discrete):
        actions = rng.integers(action_space.n, size=shape)
    else:
        actions = rng.uniform(action_space.low, action_space.high, (*shape, *action_space.shape))
    actions = actions.astype(action_space.dtype)
    rewards = rng.standard_normal(shape).astype(np.float32)
    terminations = np.zeros(EPISODE_STEPS, dtype=bool)
    truncations = np.arange(EPISODE_STEPS) == EPISODE_STEPS - 1
    logp = np.zeros(EPISODE_STEPS, dtype=np.float32)  # BC does not read it
    return [RecordedEpisode(observations=obs[i], actions=actions[i], rewards=rewards[i], terminations=terminations,
                            truncations=truncations, action_logp=logp) for i in range(num_episodes)]


def make_dataset(path: Path, env_id: str, num_episodes: int) -> Path:
    """Write a synthetic dataset of `env_id`'s spaces to `path`; returns `path`."""
    env = gym.make(env_id)
    write_dataset(str(path), synthetic_episodes(env_id, num_episodes, seed=0), env_id=env_id,
                  observation_space=env.observation_space, action_space=env.action_space,
                  algorithm_name="synthetic (scripts/bench_offline.py)",
                  rlrun_metadata={"env": env_id, "env_config": {}, "max_episode_steps": None})
    env.close()
    return path


def size_on_disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def train_bc(dataset: Path, rows: int, batch_size: int, overrides: list[str], run_dir: Path) -> dict[str, float]:
    """One pass (the whole batches of `rows`) of `rlrun algo=bc` over `dataset`: rows/s, times, peak memory."""
    stop = rows // batch_size * batch_size
    run, metrics = run_rlrun(["algo=bc", f"offline.dataset={dataset}", f"algo.train_batch_size={batch_size}",
                              f"stop.timesteps={stop}", "evaluation.every_iterations=0", "evaluation.episodes=1",
                              "logger.tensorboard=false", *overrides], run_dir)
    last = metrics[-1]
    trained, train_s = last["num_env_steps_trained_lifetime"], last["time_total_s"]
    return {"rows": trained, "train_s": train_s, "rows_per_s": trained / train_s, "exit_s": run.exit_s,
            "peak_mb": run.peak_mb}


def bench_throughput(budget: Budget, tmp: Path) -> list[dict[str, Any]]:
    """Rows/s of every (dataset, learners.num), `budget.runs` runs each."""
    results = []
    rows = budget.episodes * EPISODE_STEPS
    for env_id in SIZES:
        dataset = make_dataset(tmp / f"{env_id}-{budget.episodes}", env_id, budget.episodes)
        for n in budget.learners:
            runs = [train_bc(dataset, rows, BATCH_SIZE, [f"learners.num={n}"], tmp / f"{env_id}-n{n}-run{i}")
                    for i in range(budget.runs)]
            results.append({"env": env_id, "learners": n, "dataset_rows": rows, "runs": runs,
                            **{key: median_of(runs, key) for key in ("rows_per_s", "train_s", "exit_s", "peak_mb")}})
            print(f"{env_id} learners.num={n}: {results[-1]['rows_per_s']:,.0f} rows/s", flush=True)
    return results


def bench_memory(budget: Budget, tmp: Path) -> dict[str, Any]:
    """Peak memory of one pass streaming in MEMORY_CHUNKS chunks, and with the whole dataset in memory."""
    rows = budget.memory_episodes * EPISODE_STEPS
    dataset = make_dataset(tmp / f"memory-{MEMORY_ENV}", MEMORY_ENV, budget.memory_episodes)
    bounds = {"streamed": rows // MEMORY_CHUNKS, "whole": rows}
    runs = {name: {"memory_rows": bound, **train_bc(dataset, rows, budget.memory_batch_size,
                                                    ["learners.num=0", f"offline.memory_rows={bound}"],
                                                    tmp / f"memory-{name}")}
            for name, bound in bounds.items()}
    return {"env": MEMORY_ENV, "dataset_rows": rows, "disk_mb": size_on_disk_mb(dataset),
            "batch_size": budget.memory_batch_size, "runs": runs}


def print_throughput(results: list[dict[str, Any]], runs: int) -> None:
    print(f"BC rows trained per second from disk, batch {BATCH_SIZE}, one pass; median of {runs} "
          "(rows / time_total_s: training iterations only)")
    print()
    print("| dataset | rows | learners.num | rows/s | vs learners.num=0 | train s | wall s | peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    local: dict[str, float] = {}
    for r in results:
        base = local.setdefault(r["env"], r["rows_per_s"])
        print(f"| {SIZES[r['env']]} | {r['dataset_rows']:,} | {r['learners']} | {r['rows_per_s']:,.0f} "
              f"| {r['rows_per_s'] / base:.2f}x | {r['train_s']:.1f} | {r['exit_s']:.1f} | {r['peak_mb']:,.0f} |")


def print_memory(result: dict[str, Any]) -> None:
    print(f"Peak memory (process-tree PSS), learners.num=0, one pass over a {SIZES[result['env']]} dataset of "
          f"{result['dataset_rows']:,} rows ({result['disk_mb']:,.0f} MiB on disk), batch {result['batch_size']}")
    print()
    print("| offline.memory_rows | dataset / bound | peak MiB | rows/s | train s | wall s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in result["runs"].values():
        print(f"| {r['memory_rows']:,} | {result['dataset_rows'] / r['memory_rows']:.0f}x | {r['peak_mb']:,.0f} "
              f"| {r['rows_per_s']:,.0f} | {r['train_s']:.1f} | {r['exit_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help=f"runs per configuration (default {DEFAULT.runs})")
    parser.add_argument("--episodes", type=int, help=f"200-step episodes of each throughput dataset "
                        f"(default {DEFAULT.episodes})")
    parser.add_argument("--memory-episodes", type=int, help=f"200-step episodes of the memory benchmark's dataset "
                        f"(default {DEFAULT.memory_episodes})")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke test of this script, not a benchmark")
    args = parser.parse_args()
    base = QUICK if args.quick else DEFAULT
    budget = Budget(runs=args.runs or base.runs, episodes=args.episodes or base.episodes,
                    memory_episodes=args.memory_episodes or base.memory_episodes,
                    memory_batch_size=base.memory_batch_size, learners=base.learners)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_offline.") as tmp:
        throughput = bench_throughput(budget, Path(tmp))
        memory = bench_memory(budget, Path(tmp))
    print()
    print_throughput(throughput, budget.runs)
    print()
    print_memory(memory)
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "batch_size": BATCH_SIZE, "runs": budget.runs,
                                         "throughput": throughput, "memory": memory}, indent=2))


if __name__ == "__main__":
    main()

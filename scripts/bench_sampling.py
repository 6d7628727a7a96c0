"""Sampling throughput of one EnvRunner alone: env steps per second with policy inference.

Usage: python scripts/bench_sampling.py [--env CartPole-v1] [--num-envs 256] [--steps 200000] [--repeats 5]
Reports the median (and min/max) over repeats, after one warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rlrun.algorithms.ppo import PPOConfig
from rlrun.env import EnvRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=256_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = PPOConfig().environment(args.env).env_runners(num_envs_per_env_runner=args.num_envs)
    runner = EnvRunner(config.env_runner_spec())
    runner.sample(num_timesteps=args.num_envs * 16)  # warm-up
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch = runner.sample(num_timesteps=args.steps)
        rates.append(batch["actions"].size / (time.perf_counter() - start))
    print(f"EnvRunner sampling, {args.env}, {args.num_envs} envs, {args.steps} steps x {args.repeats}:")
    print(f"  env steps/s  median {statistics.median(rates):,.0f}  min {min(rates):,.0f}  max {max(rates):,.0f}")


if __name__ == "__main__":
    main()

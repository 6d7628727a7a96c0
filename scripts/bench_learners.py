"""Learner-update throughput: training samples per second of PPO updates on one fixed large batch.

Compares `learners.num=0` (one local learner) with 1, 2 and 4 DDP learner
actors on a local Ray instance. Each update is `--epochs` passes over the
batch in minibatches of `--minibatch-size` (split over the learners, so every
configuration takes the same number of optimizer steps on the same data);
samples/s = batch rows x epochs / update time. Median of `--repeats` updates
after one warm-up.

Usage: python scripts/bench_learners.py [--num-learners 0 1 2 4] [--num-envs 64] [--steps 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import gymnasium as gym
import ray

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.columns import Columns
from rlrun.env import EnvRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-learners", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--minibatch-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = args.num_envs * args.steps
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=args.num_envs, rollout_fragment_length=args.steps)
        .training(train_batch_size=rows, minibatch_size=args.minibatch_size, num_epochs=args.epochs)
    )
    runner = EnvRunner(config.env_runner_spec())
    batch = runner.sample()
    runner.stop()
    trained_rows = int(batch[Columns.LOSS_MASK].sum())
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, max(args.num_learners)), include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    print(f"PPO learner update, CartPole-v1, batch of {trained_rows:,} rows, {args.epochs} epochs, "
          f"minibatch {args.minibatch_size}, {os.cpu_count()} CPUs; median of {args.repeats}:")
    print(f"{'learners.num':>13} {'update_s':>9} {'samples/s':>10} {'vs local':>9}")
    local_rate = None
    for n in args.num_learners:
        group = config.copy().learners(num_learners=n).build_learner_group(env=gym.make("CartPole-v1"))
        group.update(batch=batch)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            group.update(batch=batch)
            times.append(time.perf_counter() - start)
        group.stop()
        rate = trained_rows * args.epochs / statistics.median(times)
        local_rate = local_rate or rate
        print(f"{n:>13} {statistics.median(times):>9.3f} {rate:>10,.0f} {rate / local_rate:>8.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()

"""What callbacks cost sampling: env steps per second of one EnvRunner on CartPole with 8 envs.

Three runners in one process, sampled in turn fragment by fragment (rounds alternate their order, so load
bursts from other processes on a shared machine fall on all three alike): no callbacks; a callback that
overrides no hook (the seam alone: the runner finds nothing to call); and an episode-end callback that logs one
metric from the episode. Each runner reports its episodes and metrics after every fragment, as an iteration
does (`get_metrics()`). Targets (issue 26): the empty callback costs nothing (ratio ~1.00), the episode-end
callback at most 5% (ratio >= 0.95), judged per CPU second of this process: on a shared machine the wall-clock
rate mostly measures the other processes.

Usage: python scripts/bench_callbacks.py [--rounds 30] [--fragments 20] [--fragment-length 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_common import machine

from rlrun.algorithms.ppo import PPOConfig
from rlrun.callbacks import Callback
from rlrun.env import EnvRunner

NUM_ENVS = 8
TARGETS = {"empty callback": 0.99, "episode-end callback": 0.95}


class Empty(Callback):
    """Overrides nothing."""


class EpisodeEnd(Callback):
    """One metric per finished episode, as a user's win rate would be."""

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("long_episode", float(episode.length >= 100))


def runner(callbacks: list[type[Callback]], fragment_length: int) -> EnvRunner:
    config = (PPOConfig().environment("CartPole-v1")
              .env_runners(num_envs_per_env_runner=NUM_ENVS, rollout_fragment_length=fragment_length)
              .callbacks(callbacks))
    return EnvRunner(config.env_runner_spec())


def steps_per_s(env_runner: EnvRunner, fragments: int) -> tuple[float, float]:
    """Env steps per second and per CPU second of this process over `fragments` fragments (autoreset rows are
    no env steps). CPU time leaves out the time other processes on a shared machine take from this one."""
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    for _ in range(fragments):
        steps += int(env_runner.sample()["loss_mask"].sum())
        env_runner.get_metrics()
    return steps / (time.perf_counter() - start), steps / (time.process_time() - cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--fragments", type=int, default=20, help="fragments per runner and round")
    parser.add_argument("--fragment-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runners = {"no callbacks": runner([], args.fragment_length),
               "empty callback": runner([Empty], args.fragment_length),
               "episode-end callback": runner([EpisodeEnd], args.fragment_length)}
    for env_runner in runners.values():
        steps_per_s(env_runner, 5)  # warm-up
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    order = list(runners)
    for round_ in range(args.rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            rates[name].append(steps_per_s(runners[name], args.fragments))
    wall = {name: statistics.median(w for w, _ in values) for name, values in rates.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in rates.items()}
    print(f"EnvRunner.sample, CartPole-v1, {NUM_ENVS} envs x {args.fragment_length} steps per fragment, "
          f"{args.rounds} rounds x {args.fragments} fragments per runner (medians); {machine()}")
    print("| runner | env steps/s | / no callbacks | env steps per CPU s | / no callbacks (target) |")
    print("|---|---:|---:|---:|---|")
    for name in runners:
        target = TARGETS.get(name)
        ratio, cpu_ratio = wall[name] / wall["no callbacks"], cpu[name] / cpu["no callbacks"]
        met = "met" if target is not None and cpu_ratio >= target else "missed"
        verdict = "-" if target is None else f"{cpu_ratio:.3f} (>= {target}: {met})"
        print(f"| {name} | {wall[name]:,.0f} | {ratio:.3f} | {cpu[name]:,.0f} | {verdict} |")


if __name__ == "__main__":
    main()

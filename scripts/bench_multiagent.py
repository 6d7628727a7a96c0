"""Multi-agent overhead: multi_cartpole with 2 and 8 agents beside single-agent CartPole-v1, same resources.

One process, embedded mode (1 env runner, 1 local learner, 1 torch thread), PPO with
`experiment=cartpole_ppo_fast`'s training keys and 16 env copies, independent policies
(each agent its own module, the costlier mapping). Per configuration, medians of `--repeats`:

- sampling: `EnvRunner.sample()` alone, env steps/s and agent steps/s (live agent rows);
- training: `Algorithm.train()` iterations (sample + PPO update of every module), env steps/s
  and agent steps/s.

The issue's target: the cost per agent step of a multi-agent run stays within 2x of the cost
per env step of the single-agent run (`per-agent cost` below, 1.0 = the same).

Usage: python scripts/bench_multiagent.py [--agents 2 8] [--iterations 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import Columns
from rlrun.env.env_runner_group import env_steps, make_env_runner
from rlrun.env.multi_agent.env_runner import MultiAgentBatch

MULTI_CARTPOLE = "rlrun.env.multi_agent.multi_cartpole:MultiCartPole"


def config(agents: int) -> PPOConfig:
    base = PPOConfig().env_runners(num_envs_per_env_runner=16).training(
        lr=2e-3, gamma=0.98, lambda_=0.8, train_batch_size=1024, minibatch_size=256, num_epochs=6,
        vf_clip_param=None).debugging(seed=0)
    if agents == 0:
        return base.environment("CartPole-v1")
    return base.environment(MULTI_CARTPOLE, env_config={"num_agents": agents}).multi_agent(policies="independent")


def agent_steps(batch) -> int:
    if isinstance(batch, MultiAgentBatch):
        return sum(int(b[Columns.LOSS_MASK].sum()) for b in batch.values())
    return int(batch[Columns.LOSS_MASK].sum())


def sampling_rates(agents: int, iterations: int) -> tuple[float, float]:
    runner = make_env_runner(config(agents).env_runner_spec())
    runner.sample()  # warm-up: env creation, first episodes
    start, envs, agent_rows = time.perf_counter(), 0, 0
    for _ in range(iterations):
        batch = runner.sample()
        envs, agent_rows = envs + env_steps(batch), agent_rows + agent_steps(batch)
    elapsed = time.perf_counter() - start
    runner.stop()
    return envs / elapsed, agent_rows / elapsed


def training_rates(agents: int, iterations: int) -> tuple[float, float]:
    algo = config(agents).build_algo()
    group = algo.env_runner_group
    counted = {"agents": 0}
    sample = group.sample

    def counting_sample():
        batch, steps = sample()
        counted["agents"] += agent_steps(batch)
        return batch, steps

    group.sample = counting_sample
    algo.train()  # warm-up
    counted["agents"] = 0
    before = algo.counters["num_env_steps_sampled_lifetime"]
    start = time.perf_counter()
    for _ in range(iterations):
        algo.train()
    elapsed = time.perf_counter() - start
    env_rate = (algo.counters["num_env_steps_sampled_lifetime"] - before) / elapsed
    algo.stop()
    return env_rate, counted["agents"] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"PPO, 16 env copies, independent policies, embedded; medians of {args.repeats} x {args.iterations} "
          "iterations")
    print(f"{'env':>18} {'part':>9} {'env steps/s':>12} {'agent steps/s':>14} {'per-agent cost':>15}")
    for part, measure in (("sampling", sampling_rates), ("training", training_rates)):
        single = None
        for agents in [0, *args.agents]:
            runs = [measure(agents, args.iterations) for _ in range(args.repeats)]
            env_rate = statistics.median(r[0] for r in runs)
            agent_rate = statistics.median(r[1] for r in runs)
            single = single or agent_rate
            name = "CartPole-v1" if agents == 0 else f"multi_cartpole x{agents}"
            cost = single / agent_rate
            verdict = "" if agents == 0 else (" met" if cost <= 2 else " MISSED")
            print(f"{name:>18} {part:>9} {env_rate:>12,.0f} {agent_rate:>14,.0f} {cost:>14.2f}x{verdict}")


if __name__ == "__main__":
    main()

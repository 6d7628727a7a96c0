"""Stable-Baselines3 DQN, SAC or TD3 with rl-zoo3's tuned hyperparameters: the reference side of bench_offpolicy.py.

Runs in the bench venv (.venv-bench, which has stable-baselines3 and rl_zoo3 but not
rlrun), never in .venv. The hyperparameters are rl-zoo3's own, read by sb3_zoo.py
from the installed package's `hyperparams/dqn.yml` / `sac.yml` (CartPole-v1 DQN:
256 env steps then 128 gradient steps of 64, target sync every 10 steps, [256, 256]
net, epsilon to 0.04 over 16% of the budget; Pendulum-v1 SAC: SB3's defaults with
learning rate 1e-3), and the envs are built as rl-zoo3 builds them (`make_vec_env`:
Monitor-wrapped envs in a DummyVecEnv). It trains for `--timesteps` env steps
(default: rl-zoo3's budget), then evaluates `--eval-episodes` deterministic episodes
(greedy / mean action, as rlrun's final evaluation) on a separately seeded env and
prints one JSON line: {"seed", "steps", "updates", "learn_s", "eval_return"}.
`--num-threads` is rl-zoo3's train.py option of the same name (default: torch's).
`--save PATH` keeps the trained model; `--load PATH` then only evaluates it (in a
process of its own, so a long evaluation is not part of the training run's time)
and prints {"seed", "eval_returns"}.

Usage: .venv-bench/bin/python scripts/sb3_offpolicy.py --algo dqn --env CartPole-v1 --seed 0 [--timesteps 50000]
           [--save model.zip | --load model.zip --eval-episodes 100]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from sb3_zoo import action_noise, training_env, zoo_setup
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

ALGOS: dict[str, type[BaseAlgorithm]] = {"dqn": DQN, "sac": SAC, "td3": TD3}
# The evaluation env gets its own seed, so its episodes are not the training env's next ones.
EVAL_SEED_OFFSET = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=sorted(ALGOS), required=True)
    parser.add_argument("--env", required=True, help="gymnasium id with an rl-zoo3 entry, e.g. CartPole-v1")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--timesteps", type=int, default=None, help="env steps to train (default: rl-zoo3's)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--num-threads", type=int, default=-1,
                        help="torch threads, as rl-zoo3's train.py option (-1: torch's default, one per core)")
    parser.add_argument("--save", help="write the trained model here (SB3's zip)")
    parser.add_argument("--load", help="evaluate this saved model instead of training")
    args = parser.parse_args()
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    zoo = zoo_setup(args.algo, args.env)
    if zoo.normalize is not None:  # its greedy evaluation below would see raw observations
        raise SystemExit(f"rl-zoo3's {args.algo} entry for {args.env} normalizes; this script evaluates without it")
    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + EVAL_SEED_OFFSET)
    if args.load:
        model = ALGOS[args.algo].load(args.load, device="cpu")
        returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True,
                                     return_episode_rewards=True)
        print(json.dumps({"seed": args.seed, "eval_returns": [float(r) for r in returns]}))
        return
    env = training_env(zoo, args.env, args.seed)
    model = ALGOS[args.algo](zoo.policy, env, seed=args.seed, verbose=0, **action_noise(zoo, env), **zoo.kwargs)
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps or zoo.n_timesteps)
    learn_s = time.perf_counter() - start
    eval_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    if args.save:
        model.save(args.save)
    print(json.dumps({"seed": args.seed, "steps": model.num_timesteps, "updates": model._n_updates,
                      "learn_s": learn_s, "eval_return": float(eval_return)}))


if __name__ == "__main__":
    main()

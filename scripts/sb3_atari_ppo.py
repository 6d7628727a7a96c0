"""Stable-Baselines3 PPO on an Atari game with rl-zoo3's Atari hyperparameters, for a fixed number of agent steps.

Runs in the benchmarks' peer venv (.venv-bench, scripts/bench_common.py). The hyperparameters are
rl-zoo3's own `atari` entry of the installed package's hyperparams/ppo.yml (what `python -m
rl_zoo3.train --algo ppo --env PongNoFrameskip-v4` trains: n_envs 8, n_steps 128, n_epochs 4,
batch_size 256, linear lr and clip schedules, ent 0.01, vf 0.5, CnnPolicy), and the envs are built
as rl-zoo3's ExperimentManager builds them: `make_vec_env` of DummyVecEnv with the entry's
`env_wrapper` (SB3's AtariWrapper, found by rl-zoo3's `get_wrapper_class`), then `VecFrameStack`
with its `frame_stack`; SB3 adds VecTransposeImage itself. Left out: rl-zoo3's evaluation callback,
model saving and Monitor files, which are not training.

Prints one JSON line last: the agent steps trained, the seconds `learn()` took (sampling and
updates), the seconds of each iteration (one rollout and its update, from one rollout's start to
the next's) and the seconds spent building the envs and the model before `learn()`.

Usage (peer venv): python scripts/sb3_atari_ppo.py [--env-id PongNoFrameskip-v4] [--timesteps 50000] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import ale_py
import gymnasium as gym
import yaml
from rl_zoo3.utils import get_wrapper_class, linear_schedule
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

gym.register_envs(ale_py)


def zoo_atari_hyperparams(env_id: str) -> dict:
    """rl-zoo3's PPO entry for `env_id`, else its `atari` entry (as the ExperimentManager picks it)."""
    spec = importlib.util.find_spec("rl_zoo3")
    assert spec is not None and spec.submodule_search_locations, "rl_zoo3 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "hyperparams" / "ppo.yml"
    table = yaml.safe_load(path.read_text())
    return dict(table[env_id] if env_id in table else table["atari"])


class IterationClock(BaseCallback):
    """When each rollout starts: the iterations' durations are the gaps (the last one ends when learn() returns)."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[float] = []

    def _on_rollout_start(self) -> None:
        self.starts.append(time.perf_counter())

    def _on_step(self) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="PongNoFrameskip-v4")
    parser.add_argument("--timesteps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    hp = zoo_atari_hyperparams(args.env_id)
    env_wrapper = get_wrapper_class(hp)  # rl-zoo3's own reading of `env_wrapper`
    frame_stack = hp.pop("frame_stack", None)
    n_envs = int(hp.pop("n_envs", 1))
    for key in ("env_wrapper", "n_timesteps"):
        hp.pop(key, None)
    unsupported = sorted({"normalize", "vec_env_wrapper", "env_kwargs", "callback", "policy_kwargs"} & hp.keys())
    if unsupported:
        raise SystemExit(f"rl-zoo3's entry sets {unsupported}, which this driver does not convert")
    policy = hp.pop("policy")
    for key, value in hp.items():
        if isinstance(value, str) and value.startswith("lin_"):
            hp[key] = linear_schedule(value.removeprefix("lin_"))
    env = make_vec_env(args.env_id, n_envs=n_envs, seed=args.seed, wrapper_class=env_wrapper, vec_env_cls=DummyVecEnv)
    if frame_stack:
        env = VecFrameStack(env, frame_stack)
    model = PPO(policy, env, seed=args.seed, device="cpu", verbose=0, **hp)
    setup_s = time.perf_counter() - start
    clock = IterationClock()
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, callback=clock)
    end = time.perf_counter()
    env.close()
    bounds = [*clock.starts, end]
    print(json.dumps({"steps": int(model.num_timesteps), "loop_s": end - start, "setup_s": setup_s,
                      "iteration_s": [b - a for a, b in zip(bounds, bounds[1:])]}))


if __name__ == "__main__":
    main()

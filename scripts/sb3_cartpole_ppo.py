"""Stable-Baselines3 PPO with rl-zoo3's tuned CartPole-v1 hyperparameters: the reference side of bench_vs_sb3.py.

Runs in the bench venv (.venv-bench, which has stable-baselines3 and rl_zoo3 but not
rlrun), never in .venv. The hyperparameters are read from the installed rl_zoo3
package's own `hyperparams/ppo.yml` by sb3_zoo.py (`CartPole-v1`: 8 envs x 32 steps, one
minibatch of 256, 20 epochs, gamma 0.98, GAE lambda 0.8, learning rate and clip
range annealed linearly from 1e-3 and 0.2 over 1e5 steps), and the envs are built
as rl-zoo3 builds them (`make_vec_env`: Monitor-wrapped envs in a DummyVecEnv).
Training stops at rlrun's `stop.return_mean` criterion: the mean return of the
last 100 finished training episodes reaches the threshold. It prints one JSON
line: {"seed", "solved", "steps"}.

Usage: .venv-bench/bin/python scripts/sb3_cartpole_ppo.py --seed 0 [--threshold 475]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sb3_zoo import training_env, zoo_setup
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

ENV_ID = "CartPole-v1"
WINDOW = 100  # rlrun's env_runners/episode_return_mean window (logger.smoothing_episodes)


class StopAtMeanReturn(BaseCallback):
    """Stop as soon as the mean return of the last WINDOW finished episodes reaches the threshold."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.returns: list[float] = []
        self.solved_at: int | None = None

    def _on_step(self) -> bool:
        # Monitor adds "episode" to the info of each env whose episode just ended.
        self.returns.extend(info["episode"]["r"] for info in self.locals["infos"] if "episode" in info)
        if self.returns and np.mean(self.returns[-WINDOW:]) >= self.threshold:
            self.solved_at = self.num_timesteps
            return False
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--threshold", type=float, default=475.0)
    args = parser.parse_args()
    zoo = zoo_setup("ppo", ENV_ID)
    env = training_env(zoo, ENV_ID, args.seed)
    model = PPO(zoo.policy, env, seed=args.seed, verbose=0, **zoo.kwargs)
    callback = StopAtMeanReturn(args.threshold)
    model.learn(total_timesteps=zoo.n_timesteps, callback=callback)
    print(json.dumps({"seed": args.seed, "solved": callback.solved_at is not None, "steps": callback.solved_at}))


if __name__ == "__main__":
    main()

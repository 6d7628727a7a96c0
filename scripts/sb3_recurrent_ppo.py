"""sb3-contrib's RecurrentPPO with rl-zoo3's tuned CartPoleNoVel-v1 entry: the reference side of bench_recurrent.py.

Runs in the bench venv (.venv-bench, which has sb3-contrib and rl_zoo3 but not
rlrun), never in .venv. The hyperparameters are read from the installed rl_zoo3
package's own `hyperparams/ppo_lstm.yml` by sb3_zoo.py (CartPoleNoVel-v1: 8 envs x
32 steps, minibatches of 256, 20 epochs, gamma 0.98, GAE lambda 0.8, learning rate
and clip range annealed linearly from 1e-3 and 0.2 over its 1e5-step budget, an
LSTM of 64 for the actor and one for the critic, VecNormalize on observations and
rewards), and the env is rl-zoo3's own CartPoleNoVel-v1 (CartPole-v1 with the
velocities zeroed), registered by importing rl_zoo3.import_envs. Training stops at
rlrun's `stop.return_mean` criterion (the mean return of the last 100 finished
training episodes reaches the threshold) or at the entry's budget. It prints one
JSON line: {"seed", "solved", "steps", "final_return"}.

Usage: .venv-bench/bin/python scripts/sb3_recurrent_ppo.py --seed 0 [--threshold 475]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import rl_zoo3.import_envs  # noqa: F401  (registers CartPoleNoVel-v1)
from sb3_cartpole_ppo import WINDOW, StopAtMeanReturn
from sb3_contrib import RecurrentPPO
from sb3_zoo import training_env, zoo_setup

ENV_ID = "CartPoleNoVel-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--threshold", type=float, default=475.0)
    args = parser.parse_args()
    zoo = zoo_setup("ppo_lstm", ENV_ID)
    model = RecurrentPPO(zoo.policy, training_env(zoo, ENV_ID, args.seed), seed=args.seed, verbose=0, **zoo.kwargs)
    callback = StopAtMeanReturn(args.threshold)
    model.learn(total_timesteps=zoo.n_timesteps, callback=callback)
    final = float(np.mean(callback.returns[-WINDOW:])) if callback.returns else float("nan")
    print(json.dumps({"seed": args.seed, "solved": callback.solved_at is not None, "steps": callback.solved_at,
                      "final_return": final}))


if __name__ == "__main__":
    main()

"""An env whose step is slow but costs no CPU, for scripts/bench_async.py (importable as `slow_env`).

Many real envs wait on something outside the process (a simulator, a robot, a
game server). Sleeping in `step` stands in for that: sampling dominates the run
while the 2 cores stay free for the learner, which is where asynchronous
sampling (IMPALA, APPO) should pay off over PPO's sample-then-train loop.
"""

from __future__ import annotations

import time

from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class SlowCartPole(CartPoleEnv):
    """CartPole-v1's dynamics; every step first sleeps `step_cost_s` (1 ms by default)."""

    def __init__(self, step_cost_s: float = 1e-3, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.step_cost_s = step_cost_s

    def step(self, action):
        time.sleep(self.step_cost_s)
        return super().step(action)

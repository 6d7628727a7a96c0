"""Envs that need memory: CartPole and Pendulum with their velocities hidden.

A policy that sees one observation cannot tell which way the pole is moving, so
these envs are solved only by a policy with memory (a recurrent model) or with
frame stacking. RLlib ships them as `StatelessCartPole` / `StatelessPendulum`
(the velocity entries dropped), rl-zoo3 as `CartPoleNoVel-v1` / `PendulumNoVel-v1`
(the same entries zeroed). rlrun drops them, as RLlib does: the observation is
then only what the agent can see.

- `StatelessCartPole-v1`: `[cart position, pole angle]`; CartPole-v1's dynamics,
  rewards and 500-step limit.
- `StatelessPendulum-v1`: `[cos(angle), sin(angle)]`; Pendulum-v1's dynamics,
  rewards and 200-step limit.

Both are registered with gymnasium when rlrun's env layer is imported
(rlrun/env/env_creation.py), so `env.id=StatelessCartPole-v1` works in every
process that builds envs, Ray's env runners included. StatelessCartPole also has a
vector entry point on CartPole's own vector env, which steps all copies in numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv, CartPoleVectorEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.vector.utils import batch_space

# The entries of CartPole's [x, x_dot, theta, theta_dot] and Pendulum's [cos, sin, theta_dot] that stay visible.
CARTPOLE_VISIBLE = [0, 2]
PENDULUM_VISIBLE = [0, 1]


def _visible_box(box: spaces.Box, visible: list[int]) -> spaces.Box:
    return spaces.Box(box.low[visible], box.high[visible], dtype=np.float32)


class StatelessCartPoleEnv(CartPoleEnv):
    """CartPole observing the cart's position and the pole's angle only."""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(render_mode=render_mode, **kwargs)
        self.observation_space = _visible_box(self.observation_space, CARTPOLE_VISIBLE)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[CARTPOLE_VISIBLE], info

    def step(self, action: int):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[CARTPOLE_VISIBLE], reward, terminated, truncated, info


class StatelessCartPoleVectorEnv(CartPoleVectorEnv):
    """CartPole's numpy vector env, observing the cart's position and the pole's angle only."""

    def __init__(self, num_envs: int = 1, max_episode_steps: int = 500, **kwargs: Any) -> None:
        super().__init__(num_envs=num_envs, max_episode_steps=max_episode_steps, **kwargs)
        self.single_observation_space = _visible_box(self.single_observation_space, CARTPOLE_VISIBLE)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[:, CARTPOLE_VISIBLE], info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[:, CARTPOLE_VISIBLE], reward, terminated, truncated, info


class StatelessPendulumEnv(PendulumEnv):
    """Pendulum observing its angle (as cos and sin) only, not its angular velocity."""

    def __init__(self, render_mode: str | None = None, g: float = 10.0) -> None:
        super().__init__(render_mode=render_mode, g=g)
        self.observation_space = _visible_box(self.observation_space, PENDULUM_VISIBLE)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[PENDULUM_VISIBLE], info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[PENDULUM_VISIBLE], reward, terminated, truncated, info

"""Turn an env name from the config into a gymnasium vector env.

An env is a registered gymnasium id (`CartPole-v1`) or a user class given as
`pkg.module:Class`. Registered ids with a native vectorized implementation
(CartPole's `vector_entry_point`) use it; everything else runs in a
`SyncVectorEnv`. All vector envs use gymnasium's NEXT_STEP autoreset, which the
EnvRunner relies on (see `Columns.LOSS_MASK`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode


class EnvError(ValueError):
    """An env name that cannot be resolved or built."""


def resolve_env_class(env_id: str) -> Callable[..., gym.Env] | None:
    """The class of a `pkg.module:Class` env, or None for a registered gymnasium id."""
    if ":" not in env_id or env_id in gym.registry:
        if env_id not in gym.registry:
            raise EnvError(f"unknown env id '{env_id}'; use a registered gymnasium id such as CartPole-v1 "
                           "or a user env as pkg.module:Class")
        return None
    module_name, _, attr = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise EnvError(f"cannot import env module '{module_name}' of env '{env_id}': {e}") from None
    env_cls = getattr(module, attr, None)
    if env_cls is None:
        raise EnvError(f"module '{module_name}' has no env class '{attr}'")
    return env_cls


def make_env(env_id: str, env_config: Mapping[str, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """One (non-vector) env instance, e.g. to read its spaces."""
    env_cls = resolve_env_class(env_id)
    kwargs = dict(env_config or {})
    if env_cls is None:
        return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    env = env_cls(**kwargs)
    return env if max_episode_steps is None else gym.wrappers.TimeLimit(env, max_episode_steps)


def make_vector_env(
    env_id: str,
    num_envs: int,
    env_config: Mapping[str, Any] | None = None,
    max_episode_steps: int | None = None,
) -> gym.vector.VectorEnv:
    """`num_envs` copies of the env as one vector env with NEXT_STEP autoreset."""
    env_cls = resolve_env_class(env_id)
    kwargs = dict(env_config or {})
    if env_cls is None and gym.spec(env_id).vector_entry_point is not None:
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    else:
        env = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id, kwargs, max_episode_steps) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise EnvError(f"env '{env_id}' vectorizes with autoreset mode {mode}; rlrun needs NEXT_STEP")
    return env


def env_spaces(env_id: str, env_config: Mapping[str, Any] | None = None) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one env, building it once to read them."""
    env = make_env(env_id, env_config)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()

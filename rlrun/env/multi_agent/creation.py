"""Multi-agent envs by `env.id`: PettingZoo ParallelEnvs, AEC envs through PettingZoo's own conversion, and
turn-based AEC games (which that conversion refuses) as `turn_based.TurnBasedEnv`s.

Accepted: `pkg.module:attr`, a ParallelEnv/AEC class or a function that returns one, or a
module with `parallel_env()` (PettingZoo's own layout: `env.id=mpe2.simple_spread_v3`) or, failing
that, an AEC env's `env()` beside its `raw_env` class (`env.id=pettingzoo.classic.tictactoe_v3`).
Anything else is left to `rlrun.env.env_creation` (gymnasium ids and classes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from rlrun.env.env_creation import use_headless_gl


def parallel_env_factory(env_id: str) -> Callable[..., Any] | None:
    """What builds `env_id` as a PettingZoo env, or None if `env_id` is a gymnasium env (found without building:
    a ParallelEnv/AEC class, or a PettingZoo env module). A `pkg.module:function` is the one case that
    needs a build to tell (`make_parallel_env`)."""
    if env_id in gym.registry:
        return None
    use_headless_gl()  # as env_creation does, before the env's module (which may import MuJoCo) is imported
    module_name, sep, attr = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None  # env_creation names the problem in its own error
    factory = getattr(module, attr, None) if sep else _module_factory(module)
    if factory is None or (isinstance(factory, type) and not _is_pettingzoo_class(factory)):
        return None
    return factory


def _module_factory(module: Any) -> Callable[..., Any] | None:
    """A PettingZoo env module's builder: `parallel_env()`, else `env()` when the module's `raw_env` is an AEC env."""
    if hasattr(module, "parallel_env"):
        return module.parallel_env
    raw = getattr(module, "raw_env", None)
    return module.env if isinstance(raw, type) and _is_pettingzoo_class(raw) and hasattr(module, "env") else None


def is_multi_agent_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> bool:
    factory = parallel_env_factory(env_id)
    if factory is None:
        return False
    if isinstance(factory, type) or ":" not in env_id:
        return True
    env = make_parallel_env(env_id, env_config)
    if env is not None:
        env.close()
    return env is not None


def make_parallel_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> Any | None:
    """`env_id` built as a ParallelEnv (or a TurnBasedEnv, for a turn-based game) with `env_config` as keyword
    arguments; None if it is not a multi-agent env."""
    factory = parallel_env_factory(env_id)
    return None if factory is None else _as_parallel(factory(**dict(env_config or {})))


def _is_pettingzoo_class(cls: type) -> bool:
    from pettingzoo import AECEnv, ParallelEnv

    return issubclass(cls, (ParallelEnv, AECEnv))


def _as_parallel(env: Any) -> Any | None:
    from pettingzoo import AECEnv, ParallelEnv
    from pettingzoo.utils.conversions import aec_to_parallel

    from rlrun.env.multi_agent.packing import pack_parallel_observations

    if isinstance(env, AECEnv):
        from rlrun.env.multi_agent.turn_based import TurnBasedEnv, is_turn_based

        return TurnBasedEnv(env) if is_turn_based(env) else pack_parallel_observations(aec_to_parallel(env))
    if isinstance(env, ParallelEnv):
        return pack_parallel_observations(env)
    env.close()  # a gymnasium env behind a function: env_creation builds those
    return None


def is_turn_based_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> bool:
    """Whether the multi-agent env `env_id` is a turn-based game (sampled by `turn_based.TurnBasedEnvRunner`)."""
    from rlrun.env.multi_agent.turn_based import TurnBasedEnv

    env = make_parallel_env(env_id, env_config)
    env.close()
    return isinstance(env, TurnBasedEnv)

"""A vector env's internal state as plain data, so that a resumed run continues mid-episode.

gymnasium envs have no get_state/set_state. `capture` walks the vector env, its
sub-envs and their wrappers and copies every instance attribute that is plain
data: numbers, strings, numpy arrays, numpy random generators (as their
bit-generator state) and lists, tuples and string-keyed dicts of those.
Attributes that the run's config rebuilds identically (spaces, enums, specs,
metadata, constructor arguments) are skipped. That covers gymnasium's
classic-control envs exactly, CartPole's native vector env included.

An env holding anything else -- a Box2D world, a pygame surface, an object of
the user's -- cannot be captured this way: `capture` returns None and the
caller starts fresh episodes instead. No pickle is involved in either direction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np

# Configuration, not state: rebuilt identically from the run's config.
_CONFIG_ATTRS = frozenset({"metadata", "spec", "env_fns", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs"})
# Walked into as objects of their own.
_INNER_ENV_ATTRS = frozenset({"env", "envs"})
_GENERATOR_KEY = "__bit_generator_state__"
# Restoring builds the bit generator by name: only numpy's own, never an arbitrary attribute.
_BIT_GENERATORS = {cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937,
                                                 np.random.Philox, np.random.SFC64)}
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex
# (path, object) of every part of an env whose attributes hold its state.
ObjectWalk = Callable[[Any], Iterator[tuple[str, Any]]]


class _NotPlainData(Exception):
    """An attribute whose value has no plain-data form."""


def capture(env: Any, objects: ObjectWalk | None = None) -> dict[str, Any] | None:
    """`{object path: {"class": name, "attrs": {...}}}`, or None if some state is not plain data.

    `objects` walks the env's parts (default: a gymnasium env's wrappers and sub-envs); an attribute holding
    a walked part is that part's own entry, not an attribute of its holder.
    """
    snapshot: dict[str, Any] = {}
    parts = dict((objects or _objects)(env))
    walked = {id(obj) for obj in parts.values()}
    try:
        for path, obj in parts.items():
            attrs = {name: _encode(value) for name, value in vars(obj).items()
                     if not _is_config(name, value) and id(value) not in walked}
            snapshot[path] = {"class": type(obj).__name__, "attrs": attrs}
    except _NotPlainData:
        return None
    return snapshot


def restore(env: Any, snapshot: dict[str, Any], objects: ObjectWalk | None = None) -> None:
    """Put a `capture` snapshot (taken with the same `objects` walk) back into an env built from the same config."""
    parts = dict((objects or _objects)(env))
    if set(parts) != set(snapshot):
        raise ValueError(f"env state holds objects {sorted(snapshot)}, this env has {sorted(parts)}")
    for path, obj in parts.items():
        entry = snapshot[path]
        if entry["class"] != type(obj).__name__:
            where = path or "the vector env"
            raise ValueError(f"env state of {where} is for {entry['class']}, not {type(obj).__name__}")
        attrs = vars(obj)
        for name, value in entry["attrs"].items():
            attrs[name] = _decode(value, attrs.get(name))  # the instance dict: bypasses properties, like vars()


def _objects(env: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """The env, then every env it wraps (`env`) or vectorizes (`envs`), keyed by a stable path."""
    yield path, env
    attrs = vars(env)
    if isinstance(attrs.get("env"), (gym.Env, gym.vector.VectorEnv)):
        yield from _objects(attrs["env"], f"{path}env/")
    for i, sub in enumerate(attrs.get("envs") or ()):
        yield from _objects(sub, f"{path}envs/{i}/")


def _is_config(name: str, value: Any) -> bool:
    return (
        name in _CONFIG_ATTRS
        or name in _INNER_ENV_ATTRS
        or isinstance(value, (gym.Space, Enum))
        # Spaces by agent (a PettingZoo env's observation_spaces / action_spaces).
        or (isinstance(value, dict) and bool(value) and all(isinstance(v, gym.Space) for v in value.values()))
        or (callable(value) and not isinstance(value, np.random.Generator))
    )


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in _ARRAY_KINDS:
        return value.copy()
    if isinstance(value, np.random.Generator) and type(value.bit_generator).__name__ in _BIT_GENERATORS:
        return {_GENERATOR_KEY: value.bit_generator.state}
    if isinstance(value, (list, tuple)):
        return type(value)(_encode(v) for v in value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v) for k, v in value.items()}
    raise _NotPlainData(type(value).__name__)


def _decode(value: Any, current: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value[()] if value.ndim == 0 else value.copy()  # 0-d arrays were numpy scalars
    if isinstance(value, dict) and _GENERATOR_KEY in value:
        state = value[_GENERATOR_KEY]
        bit_generator = _BIT_GENERATORS[state["bit_generator"]]
        if not isinstance(current, np.random.Generator) or type(current.bit_generator) is not bit_generator:
            current = np.random.Generator(bit_generator())
        current.bit_generator.state = state
        return current
    if isinstance(value, dict):
        return {k: _decode(v, None) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_decode(v, None) for v in value)
    return value

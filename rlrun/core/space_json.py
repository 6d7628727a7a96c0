"""Observation and action spaces as JSON, so a checkpoint says what its modules were built for.

A checkpoint is data, not code (no pickle), and its weights alone do not give the spaces a module is built
on: `rlrun.load` reads them from here and builds a policy without making the env (which a deployment
machine may not have). The spaces the models take: Box (bounds stored once when uniform: an Atari frame's
28k equal bounds are one number), Discrete, MultiDiscrete, MultiBinary, Dict, Tuple, and PackedSpace (its
structured space).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlrun.core.packed_space import PackedSpace


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """`space` as plain JSON data; ValueError for a kind of space no model takes."""
    if isinstance(space, PackedSpace):
        return {"type": "Packed", "original": space_to_json(space.original)}
    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": np.dtype(space.dtype).name,
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "start": space.start.tolist()}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_json(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(sub) for sub in space.spaces]}
    raise ValueError(f"no JSON form for the space {space}")


def space_from_json(data: dict[str, Any]) -> gym.Space:
    """The space `space_to_json` wrote."""
    kind = data["type"]
    if kind == "Packed":
        return PackedSpace(space_from_json(data["original"]))
    if kind == "Box":
        dtype, shape = np.dtype(data["dtype"]), tuple(data["shape"])
        low, high = (np.broadcast_to(np.asarray(data[end], dtype), shape).copy() for end in ("low", "high"))
        return gym.spaces.Box(low, high, shape, dtype)
    if kind == "Discrete":
        return gym.spaces.Discrete(data["n"], start=data["start"])
    if kind == "MultiDiscrete":
        return gym.spaces.MultiDiscrete(data["nvec"], start=data["start"])
    if kind == "MultiBinary":
        return gym.spaces.MultiBinary(data["n"])
    if kind == "Dict":
        return gym.spaces.Dict({key: space_from_json(sub) for key, sub in data["spaces"].items()})
    if kind == "Tuple":
        return gym.spaces.Tuple([space_from_json(sub) for sub in data["spaces"]])
    raise ValueError(f"unknown space type {kind!r}")


def _bound(values: np.ndarray) -> Any:
    """One number when every entry is the same (broadcast back by Box), else the nested list."""
    flat = values.reshape(-1)
    return flat[0].item() if flat.size and (flat == flat[0]).all() else values.tolist()

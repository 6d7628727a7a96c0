"""Structured observations (Dict, Tuple, Discrete, MultiDiscrete, MultiBinary) packed into one flat uint8 row.

Every array-based component of rlrun (env runners, batches, replay buffers, Minari datasets, Ray's object
store, checkpoints, observation filters) takes a Box. Rather than teach each of them about nested spaces,
an env's structured observation travels as ONE row of its parts' raw bytes: a `PackedSpace` is a uint8 Box
of that row, and it knows how to rebuild the structure (`unpack`) where a network needs it. Raw bytes, not
floats, so a uint8 image part stays uint8 end to end (RLlib flattens to float32 and pays 4x memory for
pixels) and a discrete part keeps its exact integer.

Parts that no network can take (gymnasium's Text, Graph, Sequence, OneOf: MiniGrid's `mission` string)
are left out of `.original` with one logged line, as SB3's combined extractor refuses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

logger = logging.getLogger("rlrun")

# The parts a network can use; anything else is dropped from `.original`.
LEAF_SPACES: tuple[type[gym.Space], ...] = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete,
                                            gym.spaces.MultiBinary)
# The top-level Dict entry that carries a legal-action mask (PettingZoo's classic games, SB3's MaskablePPO).
ACTION_MASK_KEY = "action_mask"
_logged: set[str] = set()  # each dropped part is reported once per process, not once per env copy


@dataclass(frozen=True)
class Leaf:
    """One usable part: where it sits in the structure (`path` of Dict keys / Tuple indices) and in the row."""

    path: tuple[str | int, ...]
    space: gym.Space
    offset: int
    nbytes: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.space.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.space.shape)

    @property
    def name(self) -> str:
        """The path as one dotted name, for messages and docs: `image`, `goal.position`, `0`."""
        return ".".join(str(p) for p in self.path)


def usable_part(space: gym.Space, dropped: list[str], path: tuple[str | int, ...] = ()) -> gym.Space | None:
    """`space` without the parts a network cannot take (each named in `dropped`), or None when nothing is left."""
    if isinstance(space, LEAF_SPACES):
        return space
    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        items = space.spaces.items() if isinstance(space, gym.spaces.Dict) else enumerate(space.spaces)
        kept = {key: part for key, sub in items if (part := usable_part(sub, dropped, (*path, key))) is not None}
        if not kept:
            return None
        if isinstance(space, gym.spaces.Dict):
            return gym.spaces.Dict(kept)
        if len(kept) < len(space.spaces):  # a Tuple keeps its positions only when nothing was dropped
            from rlrun.core.rl_module.catalog import ModelError  # here: the catalog imports this module

            raise ModelError(f"observation part '{'.'.join(map(str, path)) or 'Tuple'}' is a Tuple with an "
                             "unusable part; only Dict entries can be left out (use a Dict observation)")
        return gym.spaces.Tuple(list(kept.values()))
    dropped.append(f"'{'.'.join(map(str, path)) or 'observation'}' ({type(space).__name__})")
    return None


def _leaf_paths(space: gym.Space, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], gym.Space]]:
    """Leaves in gymnasium's own order: a Dict's (sorted) keys as it holds them, a Tuple's positions."""
    if isinstance(space, gym.spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in _leaf_paths(sub, (*path, key))]
    if isinstance(space, gym.spaces.Tuple):
        return [leaf for i, sub in enumerate(space.spaces) for leaf in _leaf_paths(sub, (*path, i))]
    return [(path, space)]


def _get(obs: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        obs = obs[key]
    return obs


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype)).dtype


class PackedSpace(gym.spaces.Box):
    """A structured observation space seen as a uint8 Box of its parts' raw bytes.

    `pack` turns observations into rows, `unpack` turns a batch of rows back into the structure (tensors of
    each part's dtype), `action_mask` reads the legal-action mask. Parts are laid out in `leaves` order.
    """

    def __init__(self, space: gym.Space) -> None:
        dropped: list[str] = []
        original = usable_part(space, dropped)
        if original is None:
            from rlrun.core.rl_module.catalog import ModelError

            raise ModelError(f"observation space {space} has no part the models can use (Box, Discrete, "
                             "MultiDiscrete, MultiBinary)")
        for part in dropped:
            message = (f"observation part {part} is left out: the models take Box, Discrete, MultiDiscrete and "
                       "MultiBinary parts")
            if message not in _logged:
                _logged.add(message)
                logger.warning(message)
        self.original = original
        leaves, offset = [], 0
        for path, leaf in _leaf_paths(original):
            nbytes = int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
            leaves.append(Leaf(path, leaf, offset, nbytes))
            offset += nbytes
        self.leaves: tuple[Leaf, ...] = tuple(leaves)
        super().__init__(0, 255, (offset,), np.uint8)

    @property
    def mask_leaf(self) -> Leaf | None:
        """The top-level `action_mask` entry of a Dict observation, if there is one."""
        return next((leaf for leaf in self.leaves if leaf.path == (ACTION_MASK_KEY,)), None)

    @property
    def feature_leaves(self) -> tuple[Leaf, ...]:
        """The parts an encoder turns into features: every leaf but the action mask."""
        return tuple(leaf for leaf in self.leaves if leaf.path != (ACTION_MASK_KEY,))

    def pack(self, obs: Any) -> np.ndarray:
        """One structured observation, or a batch of them (leading dims on every part) -> uint8 `[..., nbytes]`."""
        parts = []
        for leaf in self.leaves:
            value = np.asarray(_get(obs, leaf.path), dtype=leaf.dtype)
            batch = value.shape[:value.ndim - len(leaf.shape)]
            parts.append(np.ascontiguousarray(value.reshape(*batch, -1)).view(np.uint8))
        return np.concatenate(parts, axis=-1)

    def unpack(self, x: torch.Tensor | np.ndarray) -> Any:
        """uint8 rows `[..., nbytes]` -> the structure (dict / tuple) of tensors `[..., *shape]`, each part's dtype."""
        return self._rebuild(self.original, torch.as_tensor(x))

    def action_mask(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        """The legal-action mask of rows `[..., nbytes]` as bool `[..., n]`; None without an `action_mask` entry."""
        leaf = self.mask_leaf
        if leaf is None:
            return None
        return self.part(torch.as_tensor(x), leaf).flatten(x.ndim - 1) != 0

    def part(self, x: torch.Tensor, leaf: Leaf) -> torch.Tensor:
        """Part `leaf` of rows `[..., nbytes]`, its bytes read as its dtype: `[..., *shape]`. (`clone` gives the
        dtype view a fresh storage, aligned for the part's item size.)"""
        batch = x.shape[:-1]
        raw = x[..., leaf.offset:leaf.offset + leaf.nbytes].reshape(-1, leaf.nbytes).clone()
        return raw.view(_torch_dtype(leaf.dtype)).reshape(*batch, *leaf.shape)

    def _rebuild(self, space: gym.Space, x: torch.Tensor, path: tuple[str | int, ...] = ()) -> Any:
        if isinstance(space, gym.spaces.Dict):
            return {key: self._rebuild(sub, x, (*path, key)) for key, sub in space.spaces.items()}
        if isinstance(space, gym.spaces.Tuple):
            return tuple(self._rebuild(sub, x, (*path, i)) for i, sub in enumerate(space.spaces))
        return self.part(x, next(leaf for leaf in self.leaves if leaf.path == path))

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        """A packed sample of the structured space (random bytes would not be a valid observation)."""
        return self.pack(self.original.sample())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedSpace) and self.original == other.original

    def __hash__(self) -> int:
        return hash(repr(self.original))

    def __repr__(self) -> str:
        return f"PackedSpace({self.original})"


def as_model_input(space: gym.Space, obs: Any) -> np.ndarray:
    """`obs` of a module's observation space as the module reads it: packed into its row if `space` is a
    PackedSpace (a Dict, Tuple, Discrete, ... observation), else as an array."""
    return space.pack(obs) if isinstance(space, PackedSpace) else np.asarray(obs)


def pack_space(space: gym.Space) -> gym.Space:
    """The space everything downstream sees: a Box as it is, anything else packed."""
    return space if isinstance(space, gym.spaces.Box) else PackedSpace(space)


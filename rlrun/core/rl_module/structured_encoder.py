"""The encoder of a structured observation (a PackedSpace): one small encoder per part, features concatenated.

SB3's CombinedExtractor and RLlib's flattening preprocessor in one: discrete parts one-hot (a network
cannot read a category's index as a magnitude), image parts through the CNN the catalog builds for that
image alone (same `model` keys as a pixel env), other Box parts flattened as they are. Parts are taken in
the PackedSpace's order (gymnasium's: a Dict's sorted keys, a Tuple's positions), so the feature layout is
fixed by the space. The `action_mask` entry is no feature: the algorithms apply it to the logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.core.packed_space import Leaf, PackedSpace
from rlrun.core.rl_module.catalog import Catalog, Encoder, FlattenEncoder, ModelError, is_image


class OneHotEncoder(Encoder):
    """Discrete or MultiDiscrete values -> concatenated one-hots (`start` subtracted, as gymnasium's own
    `flatten` does), one block of `n` per component."""

    def __init__(self, sizes: Sequence[int], starts: Sequence[int]) -> None:
        super().__init__()
        self.out_dim = int(sum(sizes))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.long), persistent=False)
        self.register_buffer("starts", torch.as_tensor(starts, dtype=torch.long), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        index = obs.reshape(len(obs), -1).long() - self.starts + self.offsets
        return torch.zeros(len(obs), self.out_dim, device=obs.device).scatter_(1, index, 1.0)


def part_encoder(space: gym.Space, model_config: Mapping[str, Any]) -> Encoder:
    """The encoder of one part: one-hot for Discrete / MultiDiscrete, the catalog's own for a Box (a CNN for an
    image, a flatten for a vector), floats for MultiBinary."""
    if isinstance(space, gym.spaces.Discrete):
        return OneHotEncoder([int(space.n)], [int(space.start)])
    if isinstance(space, gym.spaces.MultiDiscrete):
        return OneHotEncoder(space.nvec.flatten().tolist(), np.broadcast_to(space.start, space.nvec.shape).flatten())
    if isinstance(space, gym.spaces.MultiBinary):
        return FlattenEncoder(gym.spaces.Box(0, 1, space.shape, np.int8))
    return Catalog(space, model_config).build_encoder()


class StructuredEncoder(Encoder):
    """Packed uint8 rows `[N, nbytes]` -> each part's features, concatenated `[N, out_dim]`."""

    def __init__(self, space: PackedSpace, model_config: Mapping[str, Any]) -> None:
        super().__init__()
        self.space = space
        self.leaves: tuple[Leaf, ...] = space.feature_leaves
        self.parts = nn.ModuleList(part_encoder(leaf.space, model_config) for leaf in self.leaves)
        self.out_dim = sum(part.out_dim for part in self.parts)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(self.space.part(obs, leaf)) for leaf, part in zip(self.leaves, self.parts)], dim=-1)


def check_structured(space: PackedSpace, model_config: Mapping[str, Any]) -> None:
    """ModelError unless every part can be encoded with these `model` keys (a CNN that fits each image part),
    and there is at least one part besides the action mask."""
    if not space.feature_leaves:
        raise ModelError(f"observation space {space.original} has no part to learn from besides its action_mask")
    for leaf in space.feature_leaves:
        if is_image(leaf.space):
            try:
                Catalog(leaf.space, model_config).conv_layout()
            except ModelError as e:
                raise ModelError(f"observation part '{leaf.name}' {leaf.shape}: {e}") from None

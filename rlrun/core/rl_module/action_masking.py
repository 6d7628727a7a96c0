"""Action masking: an `action_mask` entry of a Dict observation says which actions are legal now.

The mask travels inside the packed observation (`PackedSpace.action_mask`), so every batch, replay buffer
and checkpoint already carries it. Modules mask in their forward passes: an illegal action's logit (or
Q-value) becomes `finfo.min`, so whatever acts on the outputs -- sampling in the env runners, greedy acting
in evaluation and `rlrun-eval`, the loss's logp, entropy and KL -- sees the legal actions only, with no
second code path (RLlib's action-masking RLModule, SB3's MaskablePPO). `finfo.min` rather than `-inf`
keeps every log-probability finite (the distributions say why that matters).

The mask has one entry per logit: `n` for Discrete(n), the sub-actions' masks concatenated (`sum(nvec)`)
for MultiDiscrete, as gymnasium's and RLlib's MultiDiscrete masks are.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlrun.config.errors import ConfigError
from rlrun.core.packed_space import ACTION_MASK_KEY, PackedSpace

# Action spaces a mask can apply to, by the number of logits their policy heads have.
MASKABLE_ACTION_SPACES: tuple[type[gym.Space], ...] = (gym.spaces.Discrete, gym.spaces.MultiDiscrete)


class ActionMaskError(ConfigError):
    """An observation whose mask leaves an acting agent no legal action: the env's mistake, the user's input,
    so the CLI reports it in one line as it does a config mistake (and Ray mode names it in EnvRunnerFailure)."""


def has_action_mask(space: gym.Space) -> bool:
    """Whether observations of `space` carry an action mask (a top-level `action_mask` entry of a Dict)."""
    return isinstance(space, PackedSpace) and space.mask_leaf is not None


def mask_size(space: PackedSpace) -> int:
    """How many entries the action mask of `space` has."""
    return int(np.prod(space.mask_leaf.shape))


def num_logits(action_space: gym.Space) -> int:
    """How many logits (and so mask entries) a policy over a maskable action space has."""
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return int(action_space.n)


def action_mask(space: gym.Space, obs: torch.Tensor) -> torch.Tensor | None:
    """The legal actions of a batch of observations of `space` (any leading dims), bool `[..., n]`, or None
    when the space has no mask."""
    return space.action_mask(obs) if isinstance(space, PackedSpace) else None


def mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`logits` with the illegal entries at `finfo.min`: softmax gives them probability 0, argmax never picks
    them while a legal entry is left, and their gradient is zero."""
    if mask is None:
        return logits
    return torch.where(mask.to(logits.device), logits, torch.finfo(logits.dtype).min)


def check_legal(mask: torch.Tensor | None, acting: np.ndarray, action_space: gym.Space, env_id: str) -> None:
    """ActionMaskError unless every acting row's mask leaves a legal action (in every sub-action).

    Rows that do not act (a finished episode's last observation, an agent waiting for its turn) may have
    an empty mask: games end with a full board.
    """
    if mask is None or not acting.any():
        return
    sizes = [int(n) for n in np.ravel(action_space.nvec)] if isinstance(action_space, gym.spaces.MultiDiscrete) \
        else [mask.shape[-1]]
    rows = mask[torch.from_numpy(acting)]
    empty = torch.stack([part.any(-1) for part in torch.split(rows, sizes, dim=-1)], -1).all(-1).logical_not()
    if empty.any():
        raise ActionMaskError(f"env '{env_id}' returned an observation whose {ACTION_MASK_KEY} allows no action "
                              f"({rows[empty][0].int().tolist()}); an env must leave at least one legal action "
                              "(one per sub-action of a MultiDiscrete space) while an episode runs")

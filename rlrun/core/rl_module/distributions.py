"""Action distributions built from a network's outputs.

Written with plain tensor ops instead of `torch.distributions`: argument
validation and object construction there cost hundreds of microseconds per call,
which dominates sampling a small policy at every env step.

Masked logits (rlrun/core/rl_module/action_masking.py) reach these classes as `finfo.min`, not `-inf`:
log-probabilities stay finite, so `p * log p` is `0 * finite = 0` in entropies and KLs instead of NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2.0 * math.pi)


class Distribution:
    """Interface of an action distribution over a batch of inputs."""

    @classmethod
    def from_logits(cls, inputs: torch.Tensor) -> Distribution:
        return cls(inputs)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def deterministic_sample(self) -> torch.Tensor:
        raise NotImplementedError

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def kl(self, other: Distribution) -> torch.Tensor:
        raise NotImplementedError


class Categorical(Distribution):
    """Categorical over the last dimension of unnormalised logits."""

    def __init__(self, logits: torch.Tensor) -> None:
        # Clamped: a masked logit (finfo.min) minus the normaliser must not round to -inf (0 * -inf is NaN).
        self.log_probs = F.log_softmax(logits, dim=-1).clamp(min=torch.finfo(logits.dtype).min)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        # Gumbel-max trick: one uniform draw per logit, no multinomial kernel.
        u = torch.rand(self.log_probs.shape, generator=generator).clamp_(1e-10, 1.0)
        return torch.argmax(self.log_probs - torch.log(-torch.log(u)), dim=-1)

    def deterministic_sample(self) -> torch.Tensor:
        return torch.argmax(self.log_probs, dim=-1)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(-1)

    def kl(self, other: Distribution) -> torch.Tensor:
        assert isinstance(other, Categorical)
        return (self.log_probs.exp() * (self.log_probs - other.log_probs)).sum(-1)


class DiagGaussian(Distribution):
    """Diagonal Gaussian; inputs are `[mean, log_std]` concatenated on the last dim."""

    def __init__(self, inputs: torch.Tensor) -> None:
        self.mean, self.log_std = torch.chunk(inputs, 2, dim=-1)
        self.std = self.log_std.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator)
        return self.mean + self.std * noise

    def deterministic_sample(self) -> torch.Tensor:
        return self.mean

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1)

    def kl(self, other: Distribution) -> torch.Tensor:
        assert isinstance(other, DiagGaussian)
        var_ratio = (self.std / other.std).pow(2)
        mean_term = ((self.mean - other.mean) / other.std).pow(2)
        return (0.5 * (var_ratio + mean_term - 1.0) - torch.log(self.std / other.std)).sum(-1)


class MultiCategorical(Distribution):
    """Independent categoricals, one per sub-action of a MultiDiscrete space; inputs are their logits
    concatenated (`sum(nvec)` of them). The joint logp and entropy are the sums over sub-actions, as the
    KL of two products of independent factors is the sum of the factors' KLs.

    Subclasses made by `over` carry the space's `nvec` and `start` (sub-action i takes values
    `start[i] .. start[i] + nvec[i] - 1`); actions have the space's shape.
    """

    nvec: ClassVar[tuple[int, ...]] = ()
    start: ClassVar[torch.Tensor] = torch.zeros(0, dtype=torch.int64)
    shape: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def over(cls, space: gym.spaces.MultiDiscrete) -> type[MultiCategorical]:
        """The distribution class for `space` (any shape of `nvec`; its sub-actions in row-major order)."""
        nvec = tuple(int(n) for n in np.ravel(space.nvec))
        start = torch.as_tensor(np.ravel(space.start), dtype=torch.int64)
        return type(cls.__name__, (cls,), {"nvec": nvec, "start": start, "shape": tuple(space.shape)})

    def __init__(self, logits: torch.Tensor) -> None:
        self.parts = [Categorical(part) for part in torch.split(logits, self.nvec, dim=-1)]
        self.lead = logits.shape[:-1]

    def _stack(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(list(parts), dim=-1)
        return (stacked + self.start.to(stacked.device)).reshape(*self.lead, *self.shape)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._stack([part.sample(generator) for part in self.parts])

    def deterministic_sample(self) -> torch.Tensor:
        return self._stack([part.deterministic_sample() for part in self.parts])

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        flat = actions.reshape(*self.lead, len(self.nvec)).long() - self.start.to(actions.device)
        return sum(part.logp(flat[..., i]) for i, part in enumerate(self.parts))

    def entropy(self) -> torch.Tensor:
        return sum(part.entropy() for part in self.parts)

    def kl(self, other: Distribution) -> torch.Tensor:
        assert isinstance(other, MultiCategorical)
        return sum(mine.kl(theirs) for mine, theirs in zip(self.parts, other.parts, strict=True))


class Bernoulli(Distribution):
    """Independent Bernoullis, one per entry of a MultiBinary space; inputs are one logit per entry.

    Subclasses made by `over` carry the space's shape, which the sampled actions take.
    """

    shape: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def over(cls, space: gym.spaces.MultiBinary) -> type[Bernoulli]:
        return type(cls.__name__, (cls,), {"shape": tuple(space.shape)})

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits
        self.lead = logits.shape[:-1]
        # log p(1) and log p(0), in the stable forms of log(sigmoid(+-x)).
        self.log_p1, self.log_p0 = F.logsigmoid(logits), F.logsigmoid(-logits)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(self.logits.shape, generator=generator)
        return (u < self.log_p1.exp()).to(torch.int8).reshape(*self.lead, *self.shape)

    def deterministic_sample(self) -> torch.Tensor:
        return (self.logits > 0).to(torch.int8).reshape(*self.lead, *self.shape)

    def logp(self, actions: torch.Tensor) -> torch.Tensor:
        ones = actions.reshape(self.logits.shape).float()
        return (ones * self.log_p1 + (1.0 - ones) * self.log_p0).sum(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.log_p1.exp() * self.log_p1 + self.log_p0.exp() * self.log_p0).sum(-1)

    def kl(self, other: Distribution) -> torch.Tensor:
        assert isinstance(other, Bernoulli)
        return (self.log_p1.exp() * (self.log_p1 - other.log_p1)
                + self.log_p0.exp() * (self.log_p0 - other.log_p0)).sum(-1)


def policy_distribution(space: gym.Space) -> tuple[type[Distribution], int]:
    """The distribution class of a policy over `space`, and how many outputs its policy head has
    (a Box's Gaussian adds its state-independent log std to those outputs itself)."""
    if isinstance(space, gym.spaces.Discrete):
        return Categorical, int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return MultiCategorical.over(space), int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.MultiBinary):
        return Bernoulli.over(space), int(np.prod(space.shape))
    return DiagGaussian, int(np.prod(space.shape))

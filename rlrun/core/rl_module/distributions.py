"""Action distributions built from a network's outputs.

Written with plain tensor ops instead of `torch.distributions`: argument
validation and object construction there cost hundreds of microseconds per call,
which dominates sampling a small policy at every env step.
"""

from __future__ import annotations

import math

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
        self.log_probs = F.log_softmax(logits, dim=-1)

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

"""The `algo=dqn` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlrun.algorithms.off_policy.schema import OffPolicySchema
from rlrun.config.fields import key, override


@dataclass
class DQNSchema(OffPolicySchema):
    """The `algo=dqn` keys (RLlib's names and meanings)."""

    name: str = override(OffPolicySchema, "name", "dqn")
    lr: float = override(OffPolicySchema, "lr", 5e-4)
    grad_clip: float | None = override(OffPolicySchema, "grad_clip", 40.0)
    double_q: bool = key(True, "Double Q-learning: the online network picks the next action, the target network "
                         "values it; false = the target network's max.")
    dueling: bool = key(True, "Dueling heads: Q(s, a) = V(s) + A(s, a) - mean over actions of A(s, a).")
    target_network_update_freq: int = override(OffPolicySchema, "target_network_update_freq", 500)
    # Checked in DQNConfig.validate: a number or a schedule is no one-key range.
    epsilon: Any = key(doc="Epsilon-greedy exploration: a constant in [0, 1], or a piecewise-linear schedule "
                       "over env steps sampled, `[[timestep, epsilon], ...]`.",
                       default_factory=lambda: [[0, 1.0], [10_000, 0.05]])

"""The `algo=sac` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlrun.algorithms.off_policy.schema import ActorCriticSchema, OffPolicySchema
from rlrun.config.fields import key, override


@dataclass
class SACSchema(ActorCriticSchema):
    """The `algo=sac` keys (RLlib's names and meanings; twin Q networks always)."""

    name: str = override(OffPolicySchema, "name", "sac")
    lr: float = override(OffPolicySchema, "lr", 3e-4, "Learning rate of the actor's, the critics' and alpha's Adam "
                         "optimizers, unless actor_lr, critic_lr or alpha_lr sets its own.")
    alpha_lr: float | None = key(None, "Learning rate of the entropy temperature alpha; null = lr.", bounds="> 0",
                                 note="= algo.lr")
    initial_alpha: float = key(1.0, "Entropy temperature alpha at the start; then tuned towards target_entropy.",
                               bounds="> 0")
    # Checked in SACConfig.validate: "auto" or any number is no one-key range.
    target_entropy: Any = key("auto", "Policy entropy that alpha is tuned towards: a number, or `auto` = -(action "
                              "dimensions).")

"""The `algo=sac` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlrun.algorithms.off_policy.schema import ActorCriticSchema, OffPolicySchema, ReplayBufferSchema
from rlrun.config.fields import key, override


@dataclass
class SACSchema(ActorCriticSchema):
    """The `algo=sac` keys (RLlib's names and meanings; twin Q networks always)."""

    name: str = override(OffPolicySchema, "name", "sac")
    lr: float = override(OffPolicySchema, "lr", 3e-4, "Learning rate of the actor's, the critics' and alpha's Adam "
                         "optimizers, unless actor_lr, critic_lr or alpha_lr sets its own.")
    alpha_lr: float | None = key(None, "Learning rate of the entropy temperature alpha; null = lr.", bounds="> 0",
                                 note="= algo.lr")
    train_batch_size: int = override(OffPolicySchema, "train_batch_size", 256)
    # RLlib's SAC default: 1M env steps (preallocated: about 23 MB for Pendulum).
    replay_buffer: ReplayBufferSchema = override(OffPolicySchema, "replay_buffer",
                                                 default_factory=lambda: ReplayBufferSchema(capacity=1_000_000))
    grad_clip: float | None = override(OffPolicySchema, "grad_clip", None)
    tau: float = override(OffPolicySchema, "tau", 0.005)
    target_network_update_freq: int = override(OffPolicySchema, "target_network_update_freq", 0)
    initial_alpha: float = key(1.0, "Entropy temperature alpha at the start; then tuned towards target_entropy.",
                               bounds="> 0")
    # Checked in SACConfig.validate: "auto" or any number is no one-key range.
    target_entropy: Any = key("auto", "Policy entropy that alpha is tuned towards: a number, or `auto` = -(action "
                              "dimensions).")
    # 256 = one gradient step of 256 rows per env step, as in the paper.
    training_intensity: float | None = override(OffPolicySchema, "training_intensity", 256.0)

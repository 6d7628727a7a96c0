"""SAC (Haarnoja et al., 2018): maximum-entropy actor-critic for Box actions.

The training step is the off-policy one (`OffPolicyAlgorithm`): sample into
the replay buffer, then `training_intensity` trained rows per sampled env step.
Exploration is the policy's own stochastic action, so SAC adds no exploration
schedule; evaluation takes the squashed mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import check
from rlrun.algorithms.off_policy import OffPolicyAlgorithm, OffPolicyConfig, OffPolicySchema, ReplayBufferSchema
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModule

LEARNING_RATES = ("actor_lr", "critic_lr", "alpha_lr")


@dataclass
class SACSchema(OffPolicySchema):
    """The `algo=sac` keys (RLlib's names and meanings; twin Q networks always)."""

    name: str = "sac"
    # The learning rate of all three optimizers unless one of the keys below sets its own.
    lr: float = 3e-4
    actor_lr: float | None = None  # null = lr
    critic_lr: float | None = None  # null = lr
    alpha_lr: float | None = None  # null = lr
    train_batch_size: int = 256
    # RLlib's SAC default: 1M env steps (preallocated: about 23 MB for Pendulum).
    replay_buffer: ReplayBufferSchema = field(default_factory=lambda: ReplayBufferSchema(capacity=1_000_000))
    grad_clip: float | None = None
    tau: float = 0.005
    target_network_update_freq: int = 0
    initial_alpha: float = 1.0
    # Entropy that alpha is tuned towards: "auto" = -(action dimensions), or a number.
    target_entropy: Any = "auto"
    # Trained rows per sampled env step: 256 = one gradient step of 256 rows per env step, as in the paper.
    training_intensity: float | None = 256.0


class SAC(OffPolicyAlgorithm):
    """The off-policy training step; the policy explores by itself."""


class SACConfig(OffPolicyConfig):
    """Builder for SAC: `SACConfig().environment("Pendulum-v1").training(actor_lr=1e-3).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = SACSchema
    algo_class: ClassVar[type[Algorithm]] = SAC
    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.sac.sac_learner import SACTorchLearner

        return SACTorchLearner

    def build_rl_module(self, observation_space: gym.Space, action_space: gym.Space) -> RLModule:
        from rlrun.algorithms.sac.sac_module import SACModule

        return SACModule(observation_space, action_space, {**self.model_config, "initial_alpha": self.initial_alpha})

    def lr_of(self, key: str) -> float:
        """`actor_lr`, `critic_lr` or `alpha_lr`, falling back to `lr`."""
        value = getattr(self, key)
        return self.lr if value is None else value

    def validate(self) -> None:
        super().validate()
        for key in LEARNING_RATES:
            value = getattr(self, key)
            check(value is None or value > 0, f"algo.{key} must be > 0 or null (= algo.lr)", value)
            # The lr schedule sets every optimizer's rate, so it is one rate for all three.
            check(value is None or self.lr_schedule is None,
                  f"algo.{key} cannot go with algo.lr_schedule, which sets all three SAC learning rates; "
                  f"set algo.{key}=null", value)
        check(self.initial_alpha > 0, "algo.initial_alpha must be > 0", self.initial_alpha)
        target = self.target_entropy
        check(target == "auto" or (isinstance(target, (int, float)) and not isinstance(target, bool)),
              "algo.target_entropy must be 'auto' (= -action dimensions) or a number", target)

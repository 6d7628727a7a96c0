"""The `algo=td3` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.algorithms.off_policy.schema import ActorCriticSchema, OffPolicySchema
from rlrun.config.fields import key, override


@dataclass
class TD3Schema(ActorCriticSchema):
    """The `algo=td3` keys (the names and meanings of RLlib's TD3 and DDPG). DDPG is `twin_q=false
    policy_delay=1 smooth_target_policy=false`."""

    name: str = override(OffPolicySchema, "name", "td3")
    lr: float = override(OffPolicySchema, "lr", 1e-3, "Learning rate of the actor's and the critics' Adam "
                         "optimizers, unless actor_lr or critic_lr sets its own.")
    # The paper's start: 10k env steps of uniformly random actions before the first update.
    num_steps_sampled_before_learning_starts: int = override(
        OffPolicySchema, "num_steps_sampled_before_learning_starts", 10_000,
        "Env steps sampled, with uniformly random actions, before the first update.")
    twin_q: bool = key(True, "Two critics, whose smaller Q-value is the TD target (clipped double Q-learning); "
                       "false = one, as in DDPG.")
    policy_delay: int = key(2, "Critic gradient steps per actor step; the target networks move with the actor's "
                            "steps (1 = every step, as in DDPG).", bounds=">= 1", integer=True)
    smooth_target_policy: bool = key(True, "Add clipped Gaussian noise to the target policy's action in the TD "
                                     "target (target policy smoothing); false = DDPG's plain target action.")
    target_noise: float = key(0.2, "Std of the target policy smoothing noise, in actions scaled to [-1, 1].",
                              bounds=">= 0")
    target_noise_clip: float = key(0.5, "The smoothing noise is clipped to [-target_noise_clip, target_noise_clip].",
                                   bounds=">= 0")
    exploration_noise: float = key(0.1, "Std of the Gaussian noise added to the actor's action while sampling, in "
                                   "actions scaled to [-1, 1] (then clipped to the bounds).", bounds=">= 0")

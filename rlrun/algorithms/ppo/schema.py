"""The `algo=ppo` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.config.fields import key, override
from rlrun.config.schema import AlgoSchema


@dataclass
class PPOSchema(AlgoSchema):
    """The `algo=ppo` keys (RLlib's names and meanings)."""

    name: str = override(AlgoSchema, "name", "ppo")
    lambda_: float = key(0.95, "GAE lambda: trades the advantages' bias for variance (1 = Monte Carlo returns, "
                         "0 = one-step TD errors).", bounds="in [0, 1]")
    clip_param: float = key(0.2, "Clip range of the surrogate objective: the probability ratio is clipped to "
                            "[1 - clip_param, 1 + clip_param].", bounds="> 0")
    vf_clip_param: float | None = key(10.0, "Clamp on the squared value error (RLlib's meaning, not a clip of the "
                                      "value change); null = unclipped.", bounds="> 0")
    vf_loss_coeff: float = key(0.5, "Weight of the value-function loss in the total loss.", bounds=">= 0")
    entropy_coeff: float = key(0.0, "Weight of the entropy bonus; larger explores more.", bounds=">= 0")
    use_kl_loss: bool = key(False, "Add a KL penalty between the sampling policy and the updated one to the loss.")
    kl_coeff: float = key(0.2, "Initial weight of the KL penalty (with use_kl_loss); after every update it is "
                          "scaled x1.5 or x0.5 towards kl_target.", bounds=">= 0")
    kl_target: float = key(0.01, "KL divergence per update that the adaptive kl_coeff aims for.", bounds="> 0")
    normalize_advantages: bool = key(True, "Shift and scale each train batch's advantages to mean 0, std 1.")

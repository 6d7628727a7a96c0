"""The `algo=appo` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.algorithms.impala.schema import IMPALASchema
from rlrun.config.fields import key, override


@dataclass
class APPOSchema(IMPALASchema):
    """The `algo=appo` keys (RLlib's names and meanings)."""

    name: str = override(IMPALASchema, "name", "appo")
    clip_param: float = key(0.4, "Clip range of the surrogate objective: the ratio of the current to the target "
                            "policy is clipped to [1 - clip_param, 1 + clip_param].", bounds="> 0")
    use_kl_loss: bool = key(False, "Add a KL penalty between the target policy and the current one to the loss.")
    kl_coeff: float = key(1.0, "Weight of the KL penalty (with use_kl_loss).", bounds=">= 0")
    target_network_update_freq: int = key(4, "Learner updates between two copies of the online networks into the "
                                           "target network.", bounds=">= 1", integer=True)
    circular_buffer_num_batches: int = key(4, "Train batches the circular buffer holds; a new one replaces the "
                                           "oldest.", bounds=">= 1", integer=True)
    circular_buffer_iterations_per_batch: int = key(
        2, "Batches drawn from the circular buffer per new batch; a batch leaves once drawn this often.",
        bounds=">= 1", integer=True)

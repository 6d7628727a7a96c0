"""The `algo=marwil` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.algorithms.offline.schema import OfflineAlgoSchema
from rlrun.config.fields import key, override


@dataclass
class MARWILSchema(OfflineAlgoSchema):
    """The `algo=marwil` keys (RLlib's names and defaults)."""

    name: str = override(OfflineAlgoSchema, "name", "marwil")
    beta: float = key(1.0, "Advantage weighting of the likelihood, exp(beta * A / c); 0 = behaviour cloning (no "
                      "value function trained).", bounds=">= 0", note="0 = behaviour cloning")
    vf_coeff: float = key(1.0, "Weight of the value-function loss in the total loss.", bounds=">= 0")
    moving_average_sqd_adv_norm_start: float = key(
        100.0, "Start value of c**2, the moving average of squared advantages that normalizes them.", bounds="> 0")
    moving_average_sqd_adv_norm_update_rate: float = key(
        1e-8, "Rate at which c**2 moves towards each minibatch's mean squared advantage.", bounds="in [0, 1]")

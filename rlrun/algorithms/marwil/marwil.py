"""MARWIL (Wang et al., 2018, "Exponentially Weighted Imitation Learning for Batched Historical Data").

Behaviour cloning in which each row's likelihood is weighted by
exp(beta * advantage / c), the advantage being the row's discounted return-to-go
minus a learned value, and c the root of a moving average of squared
advantages. `beta=0` is plain BC. The keys and defaults are RLlib's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import check
from rlrun.algorithms.bc import BCConfig
from rlrun.algorithms.offline import OfflineAlgorithm, OfflineAlgoSchema
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner


@dataclass
class MARWILSchema(OfflineAlgoSchema):
    """The `algo=marwil` keys (RLlib's names and defaults)."""

    name: str = "marwil"
    beta: float = 1.0  # 0 = behaviour cloning
    vf_coeff: float = 1.0
    # c**2 starts here and moves towards each minibatch's mean squared advantage at this rate.
    moving_average_sqd_adv_norm_start: float = 100.0
    moving_average_sqd_adv_norm_update_rate: float = 1e-8


class MARWIL(OfflineAlgorithm):
    """Updates on dataset rows every iteration; evaluates greedily in the env."""


class MARWILConfig(BCConfig):
    """Builder: `MARWILConfig().offline_data(dataset="data/mixed").training(beta=1.0).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = MARWILSchema
    algo_class: ClassVar[type[Algorithm]] = MARWIL

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.marwil.marwil_learner import MARWILTorchLearner

        return MARWILTorchLearner

    def validate(self) -> None:
        super().validate()
        check(self.beta >= 0, "algo.beta must be >= 0 (0 = behaviour cloning)", self.beta)
        check(self.vf_coeff >= 0, "algo.vf_coeff must be >= 0", self.vf_coeff)
        check(self.moving_average_sqd_adv_norm_start > 0, "algo.moving_average_sqd_adv_norm_start must be > 0",
              self.moving_average_sqd_adv_norm_start)
        check(0 <= self.moving_average_sqd_adv_norm_update_rate <= 1,
              "algo.moving_average_sqd_adv_norm_update_rate must be in [0, 1]",
              self.moving_average_sqd_adv_norm_update_rate)

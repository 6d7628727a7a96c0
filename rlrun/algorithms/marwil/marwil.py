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
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.bc import BCConfig
from rlrun.algorithms.offline import OfflineAlgorithm, OfflineAlgoSchema
from rlrun.config.fields import key, override
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner
from rlrun.core.rl_module.custom import ModuleContract


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


class MARWIL(OfflineAlgorithm):
    """Updates on dataset rows every iteration; evaluates greedily in the env."""


class MARWILConfig(BCConfig):
    """Builder: `MARWILConfig().offline_data(dataset="data/mixed").training(beta=1.0).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = MARWILSchema
    algo_class: ClassVar[type[Algorithm]] = MARWIL
    # BC's policy plus the value function its advantages subtract (PPO's outputs and compute_values).
    module_contract: ClassVar[ModuleContract] = AlgorithmConfig.module_contract

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.marwil.marwil_learner import MARWILTorchLearner

        return MARWILTorchLearner

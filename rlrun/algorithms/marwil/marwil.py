"""MARWIL (Wang et al., 2018, "Exponentially Weighted Imitation Learning for Batched Historical Data").

Behaviour cloning in which each row's likelihood is weighted by
exp(beta * advantage / c), the advantage being the row's discounted return-to-go
minus a learned value, and c the root of a moving average of squared
advantages. `beta=0` is plain BC. The keys and defaults are RLlib's.
"""

from __future__ import annotations

from typing import ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.bc import BCConfig
from rlrun.algorithms.marwil.schema import MARWILSchema
from rlrun.algorithms.offline import OfflineAlgorithm
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner
from rlrun.core.rl_module.custom import ModuleContract


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

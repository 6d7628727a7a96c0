"""Behaviour cloning (Pomerleau, 1991; RLlib's BC): fit the dataset's actions by maximum likelihood."""

from __future__ import annotations

from typing import ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.bc.schema import BCSchema
from rlrun.algorithms.offline import OfflineAlgorithm, OfflineConfig
from rlrun.config.schema import AlgoSchema
from rlrun.core.columns import Columns
from rlrun.core.learner import Learner
from rlrun.core.rl_module.custom import DIST_INPUTS, ModuleContract


class BC(OfflineAlgorithm):
    """Updates on dataset rows every iteration; evaluates greedily in the env."""


class BCConfig(OfflineConfig):
    """Builder: `BCConfig().environment("CartPole-v1").offline_data(dataset="data/expert").build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = BCSchema
    algo_class: ClassVar[type[Algorithm]] = BC
    # The loss is the likelihood of the dataset's actions: a policy, no value function.
    module_contract: ClassVar[ModuleContract] = ModuleContract({Columns.ACTION_DIST_INPUTS: DIST_INPUTS})

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.bc.bc_learner import BCTorchLearner

        return BCTorchLearner

"""Behaviour cloning (Pomerleau, 1991; RLlib's BC): fit the dataset's actions by maximum likelihood."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.offline import OfflineAlgorithm, OfflineAlgoSchema, OfflineConfig
from rlrun.config.fields import override
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner


@dataclass
class BCSchema(OfflineAlgoSchema):
    """The `algo=bc` keys: those of every offline algorithm."""

    name: str = override(OfflineAlgoSchema, "name", "bc")


class BC(OfflineAlgorithm):
    """Updates on dataset rows every iteration; evaluates greedily in the env."""


class BCConfig(OfflineConfig):
    """Builder: `BCConfig().environment("CartPole-v1").offline_data(dataset="data/expert").build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = BCSchema
    algo_class: ClassVar[type[Algorithm]] = BC

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.bc.bc_learner import BCTorchLearner

        return BCTorchLearner

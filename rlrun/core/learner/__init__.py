"""Learners (one copy of the trainable state) and the LearnerGroup that drives them."""

from rlrun.core.learner.config import LearnerConfig
from rlrun.core.learner.learner import Learner, TorchLearner
from rlrun.core.learner.learner_group import LearnerGroup

__all__ = ["Learner", "LearnerConfig", "LearnerGroup", "TorchLearner"]

"""DQN (Mnih et al., 2015) with double Q, dueling heads, n-step returns and prioritized replay.

The training step is the off-policy one (`OffPolicyAlgorithm`); DQN adds
epsilon-greedy exploration, whose epsilon follows a schedule over env steps
and travels to the env runners with every weight sync.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import check_schedule
from rlrun.algorithms.dqn.dqn_module import QF_PREDS, DQNModule
from rlrun.algorithms.dqn.schema import DQNSchema
from rlrun.algorithms.off_policy import OffPolicyAlgorithm, OffPolicyConfig
from rlrun.config.errors import check
from rlrun.config.schema import AlgoSchema
from rlrun.core.columns import Columns
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModuleSpec
from rlrun.core.rl_module.custom import DIST_INPUTS, PER_ACTION, ModuleContract
from rlrun.core.schedules import PiecewiseSchedule


class DQN(OffPolicyAlgorithm):
    """The off-policy training step with epsilon-greedy exploration."""

    config: DQNConfig

    def __init__(self, config: OffPolicyConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._epsilon = self.config.epsilon_schedule()

    def exploration_weights(self) -> dict[str, np.ndarray]:
        """The exploration epsilon for the env steps sampled so far."""
        epsilon = self._epsilon.value(self.counters["num_env_steps_sampled_lifetime"])
        return {"epsilon": np.array([epsilon], dtype=np.float32)}

    def exploration_metrics(self) -> dict[str, float]:
        return {"epsilon": self._epsilon.value(self.counters["num_env_steps_sampled_lifetime"])}


class DQNConfig(OffPolicyConfig):
    """Builder for DQN: `DQNConfig().environment("CartPole-v1").training(n_step=3).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = DQNSchema
    algo_class: ClassVar[type[Algorithm]] = DQN
    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Discrete,)
    # A DQNModule keeps the target network and the epsilon the algorithm sends: replace its `q` (and `target_q`).
    module_contract: ClassVar[ModuleContract] = ModuleContract(
        {QF_PREDS: PER_ACTION, Columns.ACTION_DIST_INPUTS: DIST_INPUTS}, base=DQNModule)

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.dqn.dqn_learner import DQNTorchLearner

        return DQNTorchLearner

    def get_rl_module_spec(self) -> RLModuleSpec:
        """DQN's module also takes `dueling` and the exploration's starting epsilon (the algorithm anneals it)."""
        from rlrun.algorithms.dqn.dqn_module import DQNModule

        return RLModuleSpec(DQNModule, {**self.model_config, "dueling": self.dueling,
                                        "epsilon": self.epsilon_schedule().value(0)})

    def epsilon_schedule(self) -> PiecewiseSchedule:
        return PiecewiseSchedule(self.epsilon if isinstance(self.epsilon, (list, tuple)) else [[0, self.epsilon]])

    def validate(self) -> None:
        super().validate()
        if isinstance(self.epsilon, (list, tuple)):
            check_schedule(self.epsilon, "algo.epsilon", "epsilon", upper=1.0)
        else:
            check(isinstance(self.epsilon, (int, float)) and 0 <= self.epsilon <= 1,
                  "algo.epsilon must be a number in [0, 1] or a list of [timestep, epsilon] pairs", self.epsilon)

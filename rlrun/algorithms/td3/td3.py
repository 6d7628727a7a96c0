"""TD3 (Fujimoto, van Hoof and Meger, 2018): a deterministic actor-critic for Box actions, with clipped double
Q-learning, target policy smoothing and delayed policy updates.

The training step is the off-policy one (`OffPolicyAlgorithm`): sample into the replay buffer, then
`training_intensity` trained rows per sampled env step. TD3 adds its exploration: the env runners act
uniformly at random until learning starts, then add Gaussian noise to the actor's action; the algorithm
sends which with every weight sync. Evaluation takes the actor's action.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.off_policy import OffPolicyAlgorithm, OffPolicyConfig
from rlrun.algorithms.off_policy.continuous import QF_PREDS
from rlrun.algorithms.td3.schema import TD3Schema
from rlrun.algorithms.td3.td3_module import TD3Module
from rlrun.config.schema import AlgoSchema
from rlrun.core.columns import Columns
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModuleSpec
from rlrun.core.rl_module.custom import DIST_INPUTS, PER_ROW, ModuleContract


class TD3(OffPolicyAlgorithm):
    """The off-policy training step with TD3's exploration."""

    config: TD3Config

    def exploration_weights(self) -> dict[str, np.ndarray]:
        """The exploration for the env steps sampled so far: random until learning starts (a resume without its
        buffer starts again), then the actor's action plus noise."""
        random = self.counters["num_env_steps_sampled_lifetime"] < self._learning_starts
        return {"exploration": np.array([self.config.exploration_noise, float(random)], dtype=np.float32)}


class TD3Config(OffPolicyConfig):
    """Builder for TD3: `TD3Config().environment("Pendulum-v1").training(policy_delay=2).build_algo()`;
    DDPG: `.training(twin_q=False, policy_delay=1, smooth_target_policy=False)`."""

    schema: ClassVar[type[AlgoSchema]] = TD3Schema
    algo_class: ClassVar[type[Algorithm]] = TD3
    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)
    learning_rate_keys: ClassVar[tuple[str, ...]] = ("actor_lr", "critic_lr")
    # A TD3Module keeps the optimizers' parts (pi, qf), their targets and the exploration buffer: replace its
    # networks.
    module_contract: ClassVar[ModuleContract] = ModuleContract(
        {Columns.ACTION_DIST_INPUTS: DIST_INPUTS, QF_PREDS: PER_ROW}, base=TD3Module)

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.td3.td3_learner import TD3TorchLearner

        return TD3TorchLearner

    def get_rl_module_spec(self) -> RLModuleSpec:
        """TD3's module also takes the critics' number and the exploration it starts with."""
        return RLModuleSpec(TD3Module, {**self.model_config, "twin_q": self.twin_q,
                                        "exploration_noise": self.exploration_noise,
                                        "random_start": self.num_steps_sampled_before_learning_starts > 0})

"""SAC (Haarnoja et al., 2018): maximum-entropy actor-critic for Box actions.

The training step is the off-policy one (`OffPolicyAlgorithm`): sample into
the replay buffer, then `training_intensity` trained rows per sampled env step.
Exploration is the policy's own stochastic action, so SAC adds no exploration
schedule; evaluation takes the squashed mean.
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.off_policy import OffPolicyAlgorithm, OffPolicyConfig
from rlrun.algorithms.sac.sac_module import QF_PREDS, QF_TWIN_PREDS, SACModule
from rlrun.algorithms.sac.schema import SACSchema
from rlrun.config.errors import check
from rlrun.config.schema import AlgoSchema
from rlrun.core.columns import Columns
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModuleSpec
from rlrun.core.rl_module.custom import DIST_INPUTS, PER_ROW, ModuleContract


class SAC(OffPolicyAlgorithm):
    """The off-policy training step; the policy explores by itself."""


class SACConfig(OffPolicyConfig):
    """Builder for SAC: `SACConfig().environment("Pendulum-v1").training(actor_lr=1e-3).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = SACSchema
    algo_class: ClassVar[type[Algorithm]] = SAC
    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)
    learning_rate_keys: ClassVar[tuple[str, ...]] = ("actor_lr", "critic_lr", "alpha_lr")
    # A SACModule keeps the optimizers' parts (pi, qf, log_alpha) and the target critics: replace its networks.
    module_contract: ClassVar[ModuleContract] = ModuleContract(
        {Columns.ACTION_DIST_INPUTS: DIST_INPUTS, QF_PREDS: PER_ROW, QF_TWIN_PREDS: PER_ROW}, base=SACModule)

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.sac.sac_learner import SACTorchLearner

        return SACTorchLearner

    def get_rl_module_spec(self) -> RLModuleSpec:
        """SAC's module also holds the entropy coefficient, which starts at `initial_alpha`."""
        from rlrun.algorithms.sac.sac_module import SACModule

        return RLModuleSpec(SACModule, {**self.model_config, "initial_alpha": self.initial_alpha})

    def validate(self) -> None:
        super().validate()
        target = self.target_entropy
        check(target == "auto" or (isinstance(target, (int, float)) and not isinstance(target, bool)),
              "algo.target_entropy must be 'auto' (= -action dimensions) or a number", target)

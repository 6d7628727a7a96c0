"""APPO (RLlib's asynchronous PPO): IMPALA's training step and V-trace with PPO's clipped surrogate.

Each new train batch enters a circular buffer (`circular_buffer_num_batches`
batches); after it, `circular_buffer_iterations_per_batch` batches are drawn
from the buffer and trained on, and a batch leaves the buffer once drawn that
often, so every batch is reused a bounded number of times.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.appo.schema import APPOSchema
from rlrun.algorithms.impala import IMPALA, IMPALAConfig
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner
from rlrun.core.rl_module import RLModuleSpec
from rlrun.core.rl_module.custom import ModuleContract
from rlrun.data.circular_buffer import CircularBuffer


class APPO(IMPALA):
    """IMPALA's asynchronous step; every sampled batch is replayed from the circular buffer."""

    config: APPOConfig

    def __init__(self, config: AlgorithmConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.circular_buffer = CircularBuffer(self.config.circular_buffer_num_batches,
                                              self.config.circular_buffer_iterations_per_batch, seed=self.config.seed)

    def batches_to_train(self, batch: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        # The new batch alone has `iterations_per_batch` draws left, so the buffer cannot run dry here.
        self.circular_buffer.add(batch)
        return [self.circular_buffer.sample() for _ in range(self.config.circular_buffer_iterations_per_batch)]

    def training_step(self) -> dict[str, Any]:
        results = super().training_step()
        results["circular_buffer"] = {"num_batches": len(self.circular_buffer),
                                      "num_dropped_unused_lifetime": self.circular_buffer.num_dropped_unused}
        return results


class APPOConfig(IMPALAConfig):
    """Builder for APPO: `APPOConfig().environment("CartPole-v1").training(clip_param=0.3).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = APPOSchema
    algo_class: ClassVar[type[Algorithm]] = APPO
    # IMPALA's, plus the target policy that anchors the surrogate (`forward_target`, `update_target`).
    module_contract: ClassVar[ModuleContract] = dataclasses.replace(
        IMPALAConfig.module_contract,
        methods=(*IMPALAConfig.module_contract.methods, "forward_target", "update_target"))

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.appo.appo_learner import APPOTorchLearner

        return APPOTorchLearner

    def get_rl_module_spec(self) -> RLModuleSpec:
        from rlrun.algorithms.appo.appo_module import APPOModule, RecurrentAPPOModule
        from rlrun.core.rl_module.recurrent import is_recurrent

        module_class = RecurrentAPPOModule if is_recurrent(self.model_config) else APPOModule
        return RLModuleSpec(module_class, dict(self.model_config))

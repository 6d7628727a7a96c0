"""PPO (Schulman et al., 2017): config schema, builder and training step."""

from __future__ import annotations

from typing import Any, ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.ppo.schema import PPOSchema
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner


class PPO(Algorithm):
    """Sample on-policy, update on the whole batch for `num_epochs`, broadcast the new weights."""

    def training_step(self) -> dict[str, Any]:
        with self.timer("env_runner_sampling_timer"):
            batch, env_steps = self.env_runner_group.sample()
        self.counters["num_env_steps_sampled_lifetime"] += env_steps
        with self.timer("learner_update_timer"):
            learner_results = self.learner_group.update(
                batch=batch,
                timesteps={"num_env_steps_sampled_lifetime": self.counters["num_env_steps_sampled_lifetime"]},
            )
        self.counters["num_env_steps_trained_lifetime"] += env_steps
        with self.timer("synch_weights"):
            self.env_runner_group.sync_weights(self.learner_group.get_weights())
        return {"env_runners": {"num_env_steps_sampled": env_steps}, "learners": learner_results[0]}


class PPOConfig(AlgorithmConfig):
    """Builder for PPO: `PPOConfig().environment("CartPole-v1").training(lr=3e-4).build_algo()`."""

    schema: ClassVar[type[AlgoSchema]] = PPOSchema

    algo_class: ClassVar[type[Algorithm]] = PPO
    supports_recurrent: ClassVar[bool] = True
    # The loss and GAE read these at every update; kl_coeff is not here: the adaptive coefficient is state.
    mutable_keys: ClassVar[frozenset[str]] = AlgorithmConfig.mutable_keys | {
        "lambda_", "clip_param", "vf_clip_param", "vf_loss_coeff", "entropy_coeff"}

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.ppo.ppo_learner import PPOTorchLearner

        return PPOTorchLearner

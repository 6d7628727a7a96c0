"""PPO (Schulman et al., 2017): config schema, builder and training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig, check
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner


@dataclass
class PPOSchema(AlgoSchema):
    """The `algo=ppo` keys (RLlib's names and meanings)."""

    name: str = "ppo"
    lambda_: float = 0.95
    clip_param: float = 0.2
    # Clamp on the squared value error (RLlib's meaning); null = unclipped.
    vf_clip_param: float | None = 10.0
    vf_loss_coeff: float = 0.5
    entropy_coeff: float = 0.0
    use_kl_loss: bool = False
    kl_coeff: float = 0.2
    kl_target: float = 0.01
    normalize_advantages: bool = True


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
    # The loss and GAE read these at every update; kl_coeff is not here: the adaptive coefficient is state.
    mutable_keys: ClassVar[frozenset[str]] = AlgorithmConfig.mutable_keys | {
        "lambda_", "clip_param", "vf_clip_param", "vf_loss_coeff", "entropy_coeff"}

    def default_learner_class(self) -> type[Learner]:
        from rlrun.algorithms.ppo.ppo_learner import PPOTorchLearner

        return PPOTorchLearner

    def validate(self) -> None:
        super().validate()
        check(0 <= self.lambda_ <= 1, "algo.lambda_ must be in [0, 1]", self.lambda_)
        check(self.clip_param > 0, "algo.clip_param must be > 0", self.clip_param)
        check(self.vf_clip_param is None or self.vf_clip_param > 0, "algo.vf_clip_param must be > 0 or null",
               self.vf_clip_param)
        check(self.vf_loss_coeff >= 0, "algo.vf_loss_coeff must be >= 0", self.vf_loss_coeff)
        check(self.entropy_coeff >= 0, "algo.entropy_coeff must be >= 0", self.entropy_coeff)
        check(self.kl_coeff >= 0, "algo.kl_coeff must be >= 0", self.kl_coeff)
        check(self.kl_target > 0, "algo.kl_target must be > 0", self.kl_target)

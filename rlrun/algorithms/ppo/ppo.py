"""PPO (Schulman et al., 2017): config schema, builder and training step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.config.fields import key, override
from rlrun.config.schema import AlgoSchema
from rlrun.core.learner import Learner


@dataclass
class PPOSchema(AlgoSchema):
    """The `algo=ppo` keys (RLlib's names and meanings)."""

    name: str = override(AlgoSchema, "name", "ppo")
    lambda_: float = key(0.95, "GAE lambda: trades the advantages' bias for variance (1 = Monte Carlo returns, "
                         "0 = one-step TD errors).", bounds="in [0, 1]")
    clip_param: float = key(0.2, "Clip range of the surrogate objective: the probability ratio is clipped to "
                            "[1 - clip_param, 1 + clip_param].", bounds="> 0")
    vf_clip_param: float | None = key(10.0, "Clamp on the squared value error (RLlib's meaning, not a clip of the "
                                      "value change); null = unclipped.", bounds="> 0")
    vf_loss_coeff: float = key(0.5, "Weight of the value-function loss in the total loss.", bounds=">= 0")
    entropy_coeff: float = key(0.0, "Weight of the entropy bonus; larger explores more.", bounds=">= 0")
    use_kl_loss: bool = key(False, "Add a KL penalty between the sampling policy and the updated one to the loss.")
    kl_coeff: float = key(0.2, "Initial weight of the KL penalty (with use_kl_loss); after every update it is "
                          "scaled x1.5 or x0.5 towards kl_target.", bounds=">= 0")
    kl_target: float = key(0.01, "KL divergence per update that the adaptive kl_coeff aims for.", bounds="> 0")
    normalize_advantages: bool = key(True, "Shift and scale each train batch's advantages to mean 0, std 1.")


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

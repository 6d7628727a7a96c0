"""A user's behaviour-cloning Learner (tests/user_learners.py) imitates a PPO expert on CartPole."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from user_learners import BCLearner

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.env import EnvRunner

MID = DEFAULT_MODULE_ID
ENV = "CartPole-v1"
EXPERT_RETURN = 150.0
MAX_ITERATIONS = 80


def expert_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment(ENV)
        .env_runners(num_envs_per_env_runner=16)
        .training(train_batch_size=1024, minibatch_size=256, num_epochs=4, lr=1e-3)
        .debugging(seed=0)
    )


def bc_config(learner_class=BCLearner) -> PPOConfig:
    return (
        PPOConfig()
        .environment(ENV)
        .env_runners(num_envs_per_env_runner=8)
        .training(learner_class=learner_class, train_batch_size=1024, minibatch_size=256, num_epochs=4, lr=1e-3)
        .debugging(seed=1)
    )


@pytest.fixture(scope="module")
def expert():
    """PPO trained on CartPole until its moving-average return reaches EXPERT_RETURN."""
    config = expert_config()
    algo = config.build_algo()
    returns = []
    for _ in range(MAX_ITERATIONS):
        ret = algo.train()["env_runners"].get("episode_return_mean", 0.0)
        returns.append(ret)
        if ret >= EXPERT_RETURN:
            break
    weights = algo.learner_group.get_weights()
    algo.stop()
    assert returns[-1] >= EXPERT_RETURN, f"PPO did not reach {EXPERT_RETURN} in {len(returns)} iterations: {returns}"
    return config, weights


def test_learner_class_from_import_string():
    env = gymnasium.make(ENV)
    learner = bc_config(learner_class="user_learners:BCLearner").build_learner(env=env)
    env.close()
    assert type(learner) is BCLearner


def test_behaviour_cloning_imitates_ppo_expert(expert):
    config, expert_weights = expert

    # demonstrations: the expert's greedy actions
    runner = EnvRunner(config=config)
    runner.set_weights(expert_weights)
    batch = runner.sample(num_timesteps=2048, explore=False)
    demo_episodes = runner.get_metrics()["episode_returns"]
    runner.stop()
    assert batch[Columns.OBS].shape[:2] == (128, 16)
    if demo_episodes:
        assert np.mean(demo_episodes) >= 100, f"expert demonstrations are poor: {demo_episodes}"

    env = gymnasium.make(ENV)
    learner = bc_config().build_learner(env=env)
    env.close()
    learner.build()
    losses = [learner.update(batch=batch, timesteps={})[MID]["total_loss"] for _ in range(6)]
    assert all(math.isfinite(x) for x in losses)
    # the first update starts near-uniform (NLL ~ log 2) and averages over its minibatches
    assert 0.2 < losses[0] <= math.log(2) + 0.05, losses
    assert losses[-1] < 0.5 * losses[0], f"BC loss did not decrease enough: {losses}"
    assert losses[-1] < losses[len(losses) // 2] < losses[0], losses

    # greedy evaluation of the cloned policy in an Algorithm built with the BC learner class
    algo = bc_config().build_algo()
    try:
        algo.learner_group.set_weights(learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE])
        evaluation = algo.evaluate(num_episodes=10)["evaluation"]
    finally:
        algo.stop()
    assert evaluation["num_episodes"] == 10
    # a random policy scores ~20 on CartPole; the expert scores >= 150
    assert evaluation["episode_return_mean"] >= 100, f"BC policy evaluates to {evaluation}; BC losses {losses}"

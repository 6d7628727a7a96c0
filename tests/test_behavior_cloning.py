"""A user's behaviour-cloning Learner (tests/user_learners.py) imitates a scripted CartPole expert.

The expert is a PD controller on the pole's angle and angular velocity: it balances for the
full 500 steps from any start, and its demonstrations cost no training.
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from user_learners import BCLearner

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns

MID = DEFAULT_MODULE_ID
ENV = "CartPole-v1"
DEMO_EPISODES = 4


def pd_controller(obs: np.ndarray) -> int:
    """Push the cart towards the side the pole falls to (angle plus damping on its angular velocity)."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def bc_config(learner_class=BCLearner) -> PPOConfig:
    return (
        PPOConfig()
        .environment(ENV)
        .env_runners(num_envs_per_env_runner=8)
        .training(learner_class=learner_class, train_batch_size=1024, minibatch_size=256, num_epochs=4, lr=1e-3)
        .debugging(seed=1)
    )


@pytest.fixture(scope="module")
def demonstrations() -> tuple[dict[str, np.ndarray], list[float]]:
    """A flat batch of the controller's observations and actions over DEMO_EPISODES episodes, and their returns."""
    env = gymnasium.make(ENV)
    observations, actions, returns = [], [], []
    for seed in range(DEMO_EPISODES):
        obs, _ = env.reset(seed=seed)
        episode_return, done = 0.0, False
        while not done:
            action = pd_controller(obs)
            observations.append(obs)
            actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            episode_return += float(reward)
            done = terminated or truncated
        returns.append(episode_return)
    env.close()
    return {Columns.OBS: np.stack(observations), Columns.ACTIONS: np.asarray(actions)}, returns


def test_learner_class_from_import_string():
    env = gymnasium.make(ENV)
    learner = bc_config(learner_class="user_learners:BCLearner").build_learner(env=env)
    env.close()
    assert type(learner) is BCLearner


def test_behaviour_cloning_imitates_scripted_expert(demonstrations):
    batch, demo_returns = demonstrations
    assert demo_returns == [500.0] * DEMO_EPISODES, f"the expert does not balance the pole: {demo_returns}"
    assert batch[Columns.OBS].shape == (500 * DEMO_EPISODES, 4)
    assert 0.3 < batch[Columns.ACTIONS].mean() < 0.7  # it pushes both ways

    env = gymnasium.make(ENV)
    learner = bc_config().build_learner(env=env)
    env.close()
    learner.build()
    losses = [learner.update(batch=batch, timesteps={})[MID]["total_loss"] for _ in range(6)]
    assert all(math.isfinite(x) for x in losses)
    # the first update starts near-uniform (NLL ~ log 2) and averages over its minibatches
    assert 0.2 < losses[0] <= math.log(2) + 0.05, losses
    # The expert's actions flip around a line through state space it keeps the pole on, so
    # many rows sit close to it: the NLL falls well below log 2 but not towards 0.
    assert losses[-1] < 0.75 * losses[0], f"BC loss did not decrease enough: {losses}"
    assert losses[-1] < losses[len(losses) // 2] < losses[0], losses

    # greedy evaluation of the cloned policy in an Algorithm built with the BC learner class
    algo = bc_config().build_algo()
    try:
        algo.learner_group.set_weights(learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE])
        evaluation = algo.evaluate(num_episodes=10)["evaluation"]
    finally:
        algo.stop()
    assert evaluation["num_episodes"] == 10
    # a random policy scores ~20 on CartPole; the expert scores 500
    assert evaluation["episode_return_mean"] >= 195, f"BC policy evaluates to {evaluation}; BC losses {losses}"

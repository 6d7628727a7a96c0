"""The envs that need memory (rlrun/env/stateless.py): CartPole and Pendulum with their velocities hidden."""

from __future__ import annotations

import numpy as np
import pytest

from rlrun.env.env_creation import make_env, make_vector_env
from rlrun.env.stateless import StatelessCartPoleVectorEnv

CASES = [("StatelessCartPole-v1", "CartPole-v1", [0, 2], 500), ("StatelessPendulum-v1", "Pendulum-v1", [0, 1], 200)]


@pytest.mark.parametrize(("stateless_id", "full_id", "visible", "limit"), CASES, ids=[c[0] for c in CASES])
def test_the_env_is_the_full_one_with_its_velocities_dropped(stateless_id: str, full_id: str, visible: list[int],
                                                              limit: int) -> None:
    stateless, full = make_env(stateless_id), make_env(full_id)
    assert stateless.observation_space.shape == (len(visible),)
    assert stateless.spec.max_episode_steps == full.spec.max_episode_steps == limit
    obs, _ = stateless.reset(seed=3)
    full_obs, _ = full.reset(seed=3)
    full.action_space.seed(3)
    for _ in range(limit + 5):
        np.testing.assert_array_equal(obs, full_obs[visible])
        assert stateless.observation_space.contains(obs)
        action = full.action_space.sample()
        obs, reward, terminated, truncated, _ = stateless.step(action)
        full_obs, full_reward, full_terminated, full_truncated, _ = full.step(action)
        assert (reward, terminated, truncated) == (full_reward, full_terminated, full_truncated)
        if terminated or truncated:
            break
    assert terminated or truncated


def test_stateless_cartpole_steps_its_copies_in_cartpoles_numpy_vector_env() -> None:
    vector, full = make_vector_env("StatelessCartPole-v1", 3), make_vector_env("CartPole-v1", 3)
    assert isinstance(vector, StatelessCartPoleVectorEnv)
    assert vector.single_observation_space.shape == (2,) and vector.observation_space.shape == (3, 2)
    obs, _ = vector.reset(seed=7)
    full_obs, _ = full.reset(seed=7)
    for _ in range(60):  # past the first episode ends: NEXT_STEP autoreset rows included
        np.testing.assert_array_equal(obs, full_obs[:, [0, 2]])
        actions = np.array([1, 0, 1])
        obs, *rest = vector.step(actions)
        full_obs, *full_rest = full.step(actions)
        for a, b in zip(rest[:3], full_rest[:3]):
            np.testing.assert_array_equal(a, b)


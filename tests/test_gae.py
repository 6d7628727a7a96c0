"""rlrun.data.advantages.compute_gae against numbers worked out by hand.

Every expected value below is written as explicit arithmetic, not as a loop that
re-implements GAE, so a wrong recursion (e.g. bootstrapping a terminated episode,
or not bootstrapping / not cutting at a truncation) shows up as a mismatch.
"""

from __future__ import annotations

import numpy as np
import pytest

from rlrun.data.advantages import compute_gae

GAMMA = 0.9
LAM = 0.8


def _batch():
    """[T=4, B=2]: env 0 terminates at t=1, env 1 is truncated at t=2.

    Rows after an episode end belong to a new episode. `next_values[t]` is V(s_{t+1}):
    for env 0 at t=1 it holds a garbage 9.0 that must be ignored (terminated: no
    bootstrap); for env 1 at t=2 it holds V(final obs)=2.0, which differs from
    values[3, 1]=0.1 (the first value of the next episode) and must be used.
    """
    rewards = np.array([[1.0, 1.0], [2.0, 1.0], [0.5, 1.0], [1.0, 1.0]], dtype=np.float32)
    values = np.array([[0.5, 0.3], [1.0, 0.6], [0.2, 0.9], [0.4, 0.1]], dtype=np.float32)
    next_values = np.array([[1.0, 0.6], [9.0, 0.9], [0.4, 2.0], [0.6, 0.5]], dtype=np.float32)
    terminateds = np.array([[False, False], [True, False], [False, False], [False, False]])
    truncateds = np.array([[False, False], [False, False], [False, True], [False, False]])
    return rewards, values, next_values, terminateds, truncateds


def test_gae_terminated_and_truncated_mid_fragment():
    rewards, values, next_values, terminateds, truncateds = _batch()
    adv, targets = compute_gae(rewards, values, next_values, terminateds, truncateds, GAMMA, LAM)
    gl = GAMMA * LAM  # 0.72

    # env 0 (terminates at t=1)
    d0_3 = 1.0 + 0.9 * 0.6 - 0.4  # 1.14
    d0_2 = 0.5 + 0.9 * 0.4 - 0.2  # 0.66
    d0_1 = 2.0 + 0.0 - 1.0  # terminated: no bootstrap (the 9.0 is ignored) -> 1.0
    d0_0 = 1.0 + 0.9 * 1.0 - 0.5  # 1.4
    a0_3 = d0_3  # 1.14
    a0_2 = d0_2 + gl * a0_3  # 0.66 + 0.8208 = 1.4808
    a0_1 = d0_1  # recursion cut at the terminal step -> 1.0
    a0_0 = d0_0 + gl * a0_1  # 1.4 + 0.72 = 2.12

    # env 1 (truncated at t=2)
    d1_3 = 1.0 + 0.9 * 0.5 - 0.1  # 1.35
    d1_2 = 1.0 + 0.9 * 2.0 - 0.9  # truncated: bootstraps V(final obs)=2.0 -> 1.9
    d1_1 = 1.0 + 0.9 * 0.9 - 0.6  # 1.21
    d1_0 = 1.0 + 0.9 * 0.6 - 0.3  # 1.24
    a1_3 = d1_3  # 1.35
    a1_2 = d1_2  # recursion cut at the truncation -> 1.9
    a1_1 = d1_1 + gl * a1_2  # 1.21 + 1.368 = 2.578
    a1_0 = d1_0 + gl * a1_1  # 1.24 + 1.85616 = 3.09616

    expected = np.array([[a0_0, a1_0], [a0_1, a1_1], [a0_2, a1_2], [a0_3, a1_3]])
    np.testing.assert_allclose(expected, [[2.12, 3.09616], [1.0, 2.578], [1.4808, 1.9], [1.14, 1.35]], rtol=1e-12)
    assert adv.shape == (4, 2)
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(targets, expected + values, rtol=1e-5, atol=1e-6)


def test_gae_terminated_ignores_next_value():
    """Changing V(s_{t+1}) of a terminated step changes nothing; of a truncated step it does."""
    rewards, values, next_values, terminateds, truncateds = _batch()
    base, _ = compute_gae(rewards, values, next_values, terminateds, truncateds, GAMMA, LAM)
    nv = next_values.copy()
    nv[1, 0] = -123.0  # terminated row of env 0
    adv, _ = compute_gae(rewards, values, nv, terminateds, truncateds, GAMMA, LAM)
    np.testing.assert_array_equal(adv, base)

    nv = next_values.copy()
    nv[2, 1] += 1.0  # truncated row of env 1: A[2,1] moves by gamma, A[1,1] by gamma*gl, A[0,1] by gamma*gl^2
    adv, _ = compute_gae(rewards, values, nv, terminateds, truncateds, GAMMA, LAM)
    gl = GAMMA * LAM
    np.testing.assert_allclose(adv[:, 1] - base[:, 1], [0.9 * gl * gl, 0.9 * gl, 0.9, 0.0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adv[:, 0], base[:, 0])


def test_gae_lambda_zero_is_one_step_td():
    rewards, values, next_values, terminateds, truncateds = _batch()
    adv, targets = compute_gae(rewards, values, next_values, terminateds, truncateds, GAMMA, 0.0)
    # A_t = delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
    expected = np.array(
        [
            [1.0 + 0.9 * 1.0 - 0.5, 1.0 + 0.9 * 0.6 - 0.3],
            [2.0 - 1.0, 1.0 + 0.9 * 0.9 - 0.6],
            [0.5 + 0.9 * 0.4 - 0.2, 1.0 + 0.9 * 2.0 - 0.9],
            [1.0 + 0.9 * 0.6 - 0.4, 1.0 + 0.9 * 0.5 - 0.1],
        ]
    )
    np.testing.assert_allclose(adv, expected, rtol=1e-5, atol=1e-6)
    # value target of one-step TD: r + gamma * V(s')
    np.testing.assert_allclose(targets, expected + values, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_gae_lambda_one_no_dones_is_discounted_return_minus_value(gamma):
    # One env, T=4, no episode end: next_values = values shifted by one, then the bootstrap V=0.5.
    r = [1.0, 2.0, 3.0, 4.0]
    v = [0.1, 0.2, 0.3, 0.4]
    boot = 0.5
    rewards = np.array(r, dtype=np.float32)[:, None]
    values = np.array(v, dtype=np.float32)[:, None]
    next_values = np.array(v[1:] + [boot], dtype=np.float32)[:, None]
    no = np.zeros((4, 1), dtype=bool)
    adv, targets = compute_gae(rewards, values, next_values, no, no, gamma, 1.0)
    g = gamma
    returns = [
        r[0] + g * r[1] + g**2 * r[2] + g**3 * r[3] + g**4 * boot,
        r[1] + g * r[2] + g**2 * r[3] + g**3 * boot,
        r[2] + g * r[3] + g**2 * boot,
        r[3] + g * boot,
    ]
    if gamma == 0.9:
        np.testing.assert_allclose(returns, [8.47405, 8.3045, 7.005, 4.45], rtol=1e-12)
    np.testing.assert_allclose(targets[:, 0], returns, rtol=1e-5)
    np.testing.assert_allclose(adv[:, 0], np.array(returns) - np.array(v), rtol=1e-5)


def test_gae_lambda_one_gamma_one_terminal_is_reward_to_go_minus_value():
    rewards = np.array([[1.0], [1.0], [1.0]], dtype=np.float32)
    values = np.array([[2.0], [1.5], [0.5]], dtype=np.float32)
    next_values = np.array([[1.5], [0.5], [7.0]], dtype=np.float32)  # 7.0 after the terminal step: ignored
    terminateds = np.array([[False], [False], [True]])
    truncateds = np.zeros_like(terminateds)
    adv, targets = compute_gae(rewards, values, next_values, terminateds, truncateds, 1.0, 1.0)
    np.testing.assert_allclose(targets[:, 0], [3.0, 2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(adv[:, 0], [3.0 - 2.0, 2.0 - 1.5, 1.0 - 0.5], rtol=1e-6)


def test_gae_gamma_zero_is_reward_minus_value():
    rewards, values, next_values, terminateds, truncateds = _batch()
    adv, targets = compute_gae(rewards, values, next_values, terminateds, truncateds, 0.0, LAM)
    np.testing.assert_allclose(adv, rewards - values, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(targets, rewards, rtol=1e-6, atol=1e-7)

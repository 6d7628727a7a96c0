"""Generalized Advantage Estimation (Schulman et al., 2016) on time-major batches."""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    gamma: float,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets for `[T, B]` arrays.

    `next_values[t]` is V(s_{t+1}), the value of the observation step t led to --
    for a truncated episode, its true final observation -- so:

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    A terminated episode bootstraps nothing; a truncated one bootstraps
    V(final obs) but, like a terminated one, stops the lambda-recursion, since
    the next row belongs to another episode.
    """
    not_terminated = 1.0 - terminateds.astype(np.float32)
    not_done = 1.0 - (terminateds | truncateds).astype(np.float32)
    deltas = rewards + gamma * next_values * not_terminated - values
    advantages = np.zeros_like(deltas, dtype=np.float32)
    last = np.zeros(deltas.shape[1:], dtype=np.float32)
    for t in range(len(deltas) - 1, -1, -1):
        last = deltas[t] + gamma * lambda_ * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values

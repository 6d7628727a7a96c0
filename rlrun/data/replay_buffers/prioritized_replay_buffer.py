"""Proportional prioritized replay (Schaul et al., 2016) on the FIFO ring of `ReplayBuffer`.

A transition is drawn with probability `p_i^alpha / sum_k p_k^alpha` (stratified
over `num_items` equal segments of the sum tree) and weighted by
`(N * P(i))^-beta`, normalised by the batch's largest weight. New steps enter
with the largest priority seen so far, so each is replayed at least about once.

Priorities go back by storage slot. That is safe because the algorithm
alternates strictly -- sample, update, `update_priorities`, and only then
`add` again -- so no slot sampled for an update is overwritten before its
priority returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlrun.core.columns import Columns
from rlrun.data.replay_buffers.replay_buffer import ReplayBuffer
from rlrun.data.replay_buffers.sum_tree import SumTree


class PrioritizedReplayBuffer(ReplayBuffer):
    """`ReplayBuffer` with proportional priorities; `beta` is passed to each `sample` (it is annealed)."""

    def __init__(self, capacity: int, seed: int = 0, num_envs: int | None = None, alpha: float = 0.6,
                 epsilon: float = 1e-6, *, frame_stack: int = 1) -> None:
        super().__init__(capacity, seed, num_envs, frame_stack=frame_stack)
        self.alpha = alpha
        self.epsilon = epsilon
        self._tree = SumTree(0)
        self._max_priority = 1.0
        self._update_timer = 0.0

    def _allocate(self, batch: Mapping[str, np.ndarray]) -> None:
        super()._allocate(batch)
        self._tree = SumTree(self._rows * self.num_envs)

    def _on_add(self, rows: np.ndarray) -> None:
        # The row before the new ones just became sampleable (its next observation is stored now).
        touched = np.unique(np.append(rows, (rows[0] - 1) % self._rows))
        ok = self._sampleable_rows(touched).reshape(-1)
        self._tree.set(self._slots(touched), np.where(ok, self._max_priority ** self.alpha, 0.0))
        if self.frame_stack > 1 and self._size == self._rows:
            # The oldest rows' stacks may read rows just overwritten: those stop being transition starts.
            oldest = self._oldest_rows(self.frame_stack - 1)
            stale = self._slots(oldest)[~self._sampleable_rows(oldest).reshape(-1)]
            if len(stale):
                self._tree.set(stale, np.zeros(len(stale)))

    def _slots(self, rows: np.ndarray) -> np.ndarray:
        """The flat slots of every sub-env in `rows`, row-major."""
        return (rows[:, None] * self.num_envs + np.arange(self.num_envs)).reshape(-1)

    def sample(self, num_items: int, *, n_step: int = 1, gamma: float = 0.99,
               beta: float = 0.4) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        total = self._tree.total
        if total <= 0:
            raise ValueError("the replay buffer holds no complete transition yet")
        u = (torch.arange(num_items, dtype=torch.float64) + torch.rand(num_items, generator=self._generator,
                                                                       dtype=torch.float64)).numpy()
        indices = self._tree.find(np.minimum(u * (total / num_items), np.nextafter(total, 0)))
        probs = self._tree.leaves[indices] / total
        weights = (np.count_nonzero(self._tree.leaves) * probs) ** -beta
        batch = self._transitions(indices, n_step, gamma)
        batch[Columns.WEIGHTS] = (weights / weights.max()).astype(np.float32)
        self._sample_timer += time.perf_counter() - start
        return batch

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities `|td_error| + epsilon` for the slots of the last `sample`."""
        start = time.perf_counter()
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.epsilon
        self._max_priority = max(self._max_priority, float(priorities.max()))
        self._tree.set(indices, priorities ** self.alpha)
        self._update_timer += time.perf_counter() - start

    def get_metrics(self) -> dict[str, float]:
        metrics = super().get_metrics()
        metrics["update_priorities_timer"] = self._update_timer
        self._update_timer = 0.0
        return metrics

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._state_arrays(), "priorities": self._tree.leaves.copy(),
                "max_priority": np.array([self._max_priority])}

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        self._tree = SumTree(len(state["storage"]["priorities"]))
        self._tree.set_all(np.array(state["storage"]["priorities"]))
        self._max_priority = float(state["storage"]["max_priority"][0])

"""A FIFO replay buffer of env steps with n-step returns computed at sample time.

Storage is preallocated numpy, `[rows, envs, ...]`: the env runners' time-major
fragments are appended row by row, so each sub-env's column is one continuous
stream of its steps and every observation is stored once -- the next
observation of step `t` is the observation of step `t + 1` in the same column.
That holds across episode ends too: the env runner autoresets in gymnasium's
NEXT_STEP mode, so the row after a finished step holds the episode's true final
observation (and `loss_mask = 0`: its action was ignored). Such rows are never
the start of a transition.

A transition starting at row `k` runs for `m = min(n_step, steps to the episode's
end, steps to the write head)` steps: its reward is the discounted sum of `m`
rewards, its next observation the one `m` rows later, and `n_step = m` says how
far to discount the bootstrap. The newest row is never a transition start (its
next observation is not stored yet), so windows end at the write head.
A truncated episode therefore bootstraps from its true final observation and a
terminated one does not (`terminateds` is set), as gymnasium's API intends.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlrun.core.columns import Columns

log = logging.getLogger("rlrun")
# The stored columns of a sampled fragment; `loss_mask` marks real env steps.
STORED = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS, Columns.TRUNCATEDS, Columns.LOSS_MASK)


class ReplayBuffer:
    """Uniform replay over the last `capacity` env steps of every sub-env (FIFO eviction)."""

    def __init__(self, capacity: int, seed: int = 0, num_envs: int | None = None) -> None:
        """`num_envs`: sub-env streams (all env runners' envs); None = as many as the first fragment has."""
        self.capacity = capacity
        self.num_envs = num_envs
        self._generator = torch.Generator().manual_seed(seed)
        self._storage: dict[str, np.ndarray] = {}
        self._rows = 0  # ring length; set from the number of sub-envs at the first `add`
        self._pos = 0  # next row to write
        self._size = 0  # filled rows
        self._added = 0
        self._evicted = 0
        self._sample_timer = 0.0

    # -- adding ------------------------------------------------------------------------

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        """Append a time-major fragment `[T, B, ...]` (B = all sub-envs, the same every call)."""
        if not self._storage:
            self._allocate(batch)
        if batch[Columns.REWARDS].shape[1] != self.num_envs:
            # Some env runner failed this iteration (Ray mode): its replacement starts new episodes.
            log.warning("replay buffer: a fragment of %d sub-envs instead of %d is not stored (a failed env "
                        "runner); every stream is cut here", batch[Columns.REWARDS].shape[1], self.num_envs)
            self._cut_streams()
            return
        steps = min(len(batch[Columns.REWARDS]), self._rows)
        mask = np.asarray(batch[Columns.LOSS_MASK])
        # A fragment longer than the ring evicts its own first steps before they are stored.
        self._evicted += int(mask[:len(mask) - steps].sum())
        rows = (self._pos + np.arange(steps)) % self._rows
        overwritten = max(0, self._size + steps - self._rows)
        if overwritten:
            self._evicted += int(self._storage[Columns.LOSS_MASK][self._oldest_rows(overwritten)].sum())
        for key in STORED:
            self._storage[key][rows] = batch[key][-steps:]
        self._added += int(mask.sum())
        self._pos = (self._pos + steps) % self._rows
        self._size = min(self._size + steps, self._rows)
        self._on_add(rows)

    def _cut_streams(self) -> None:
        """End every stream at the newest row, as an autoreset would: the step before it is truncated (it
        bootstraps from the newest row's observation) and the newest row starts no transition."""
        newest = (self._pos - 1) % self._rows
        if self._size >= 2:
            self._storage[Columns.TRUNCATEDS][(newest - 1) % self._rows] = True
        self._evicted += int(self._storage[Columns.LOSS_MASK][newest].sum())
        self._storage[Columns.LOSS_MASK][newest] = False
        self._on_add(np.array([newest]))

    def _allocate(self, batch: Mapping[str, np.ndarray]) -> None:
        self.num_envs = self.num_envs or batch[Columns.REWARDS].shape[1]
        self._rows = max(2, math.ceil(self.capacity / self.num_envs))
        for key in STORED:
            value = np.asarray(batch[key])
            self._storage[key] = np.zeros((self._rows, self.num_envs, *value.shape[2:]), dtype=value.dtype)

    def _on_add(self, rows: np.ndarray) -> None:
        """Called after `rows` were written (the prioritized buffer sets their priorities)."""

    def _oldest_rows(self, count: int) -> np.ndarray:
        return (self._pos - self._size + np.arange(count)) % self._rows

    # -- sampling ----------------------------------------------------------------------

    def sampleable(self) -> np.ndarray:
        """`[rows, envs]`: which steps may start a transition (real env steps, not the newest row)."""
        if not self._storage:
            return np.zeros((0, 0), dtype=bool)
        ok = self._storage[Columns.LOSS_MASK].astype(bool)
        ok[(self._pos - 1) % self._rows] = False  # rows never written hold loss_mask 0
        return ok

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int(self.sampleable().sum())

    def sample(self, num_items: int, *, n_step: int = 1, gamma: float = 0.99,
               beta: float = 0.4) -> dict[str, np.ndarray]:
        """`num_items` transitions drawn uniformly (with replacement), with `m`-step returns (see module doc).

        `beta` is for prioritized replay (one call for both kinds); here every weight is 1.

        Returns flat columns `obs, actions, rewards, new_obs, terminateds, n_step, weights` (all weights 1
        here) and `indices` (the flat storage slots, for `update_priorities`).
        """
        start = time.perf_counter()
        candidates = np.flatnonzero(self.sampleable())
        if len(candidates) == 0:
            raise ValueError("the replay buffer holds no complete transition yet")
        picks = torch.randint(len(candidates), (num_items,), generator=self._generator).numpy()
        indices = candidates[picks]
        batch = self._transitions(indices, n_step, gamma)
        batch[Columns.WEIGHTS] = np.ones(num_items, dtype=np.float32)
        self._sample_timer += time.perf_counter() - start
        return batch

    def _transitions(self, indices: np.ndarray, n_step: int, gamma: float) -> dict[str, np.ndarray]:
        """The `m`-step transitions starting at flat slots `indices` (row * envs + env)."""
        row, env = np.divmod(indices, self.num_envs)
        oldest = (self._pos - self._size) % self._rows
        age = (row - oldest) % self._rows  # chronological position; the newest row is size - 1
        offsets = np.arange(n_step)
        window = (row[:, None] + offsets) % self._rows
        done = (self._storage[Columns.TERMINATEDS][window, env[:, None]]
                | self._storage[Columns.TRUNCATEDS][window, env[:, None]])
        before_head = offsets < (self._size - 1 - age)[:, None]
        # Step j counts if it is stored with its next observation and no earlier step ended the episode.
        counts = before_head & (np.cumsum(done, axis=1) - done == 0)
        steps = counts.sum(axis=1)
        rewards = (counts * gamma ** offsets * self._storage[Columns.REWARDS][window, env[:, None]]).sum(axis=1)
        last = (row + steps - 1) % self._rows
        obs = self._storage[Columns.OBS]
        return {
            Columns.OBS: obs[row, env],
            Columns.ACTIONS: self._storage[Columns.ACTIONS][row, env],
            Columns.REWARDS: rewards.astype(np.float32),
            Columns.NEXT_OBS: obs[(row + steps) % self._rows, env],
            Columns.TERMINATEDS: self._storage[Columns.TERMINATEDS][last, env],
            Columns.N_STEP: steps.astype(np.float32),
            Columns.INDICES: indices,
        }

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Uniform replay has no priorities (the prioritized buffer overrides this)."""

    # -- metrics and state -------------------------------------------------------------

    def get_metrics(self) -> dict[str, float]:
        """`replay_buffer/...` metrics; the timer is the time spent sampling since the last call."""
        metrics = {
            "num_env_steps_stored": self._added - self._evicted,
            "num_env_steps_added_lifetime": self._added,
            "num_env_steps_evicted_lifetime": self._evicted,
            "bytes_per_env_step": self.bytes_per_env_step(),
            "sample_timer": self._sample_timer,
        }
        self._sample_timer = 0.0
        return metrics

    def bytes_per_env_step(self) -> float:
        """Storage bytes per stored row of one sub-env (each observation once, no next-obs copy)."""
        slots = self._rows * (self.num_envs or 1)
        return sum(a.nbytes for a in self._state_arrays().values()) / max(1, slots)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return dict(self._storage)

    def get_state(self) -> dict[str, Any]:
        """Arrays and integers only (a checkpoint stores them as tensors, no pickle)."""
        return {
            "storage": self._state_arrays(),
            "counters": np.array([self._rows, self._pos, self._size, self._added, self._evicted], dtype=np.int64),
            "rng": self._generator.get_state().numpy(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._rows, self._pos, self._size, self._added, self._evicted = (int(v) for v in state["counters"])
        self._storage = {key: np.array(state["storage"][key]) for key in STORED if key in state["storage"]}
        if self._storage:
            self.num_envs = self._storage[Columns.REWARDS].shape[1]
        self._generator.set_state(torch.from_numpy(np.array(state["rng"], dtype=np.uint8)))

"""Time-major batches cut into the padded sequences that recurrent modules train on.

A sampled batch is `[T, B, ...]`: T steps of B env copies. A recurrent module replays a copy's steps as
sequences. A sequence starts at an episode's first step, or `max_seq_len` steps after its episode's last
sequence started, so it never crosses an episode start (a state carried over from another episode
would train on the wrong history); it starts from the state the env runner recorded for its first step
(`Columns.STATE_IN`). Sequences are padded at their end to `max_seq_len` steps: a recurrent core reads
its steps in order, so padding after the last real step changes no real output, and a mask says which
steps are real. A minibatch is then a set of whole sequences (`[N, L, ...]`).

An episode's first step is the row after an autoreset row (`Columns.LOSS_MASK` 0: gymnasium's NEXT_STEP
mode, rlrun/env/env_runner.py), and the first row of a batch starts a sequence whatever it is. The
autoreset row itself belongs to the episode that just ended: its observation is that episode's last,
whose value bootstraps a truncated episode.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


def episode_starts(loss_mask: np.ndarray) -> np.ndarray:
    """`[T, B]` bool: the rows that begin a sequence whatever its length, the batch's first and the rows
    after an autoreset row."""
    loss_mask = np.asarray(loss_mask, dtype=bool)
    starts = np.ones_like(loss_mask)
    starts[1:] = ~loss_mask[:-1]
    return starts


@dataclasses.dataclass(frozen=True)
class Sequences:
    """Where each step of `N` padded sequences of length `L` comes from in a `[T, B]` batch.

    `rows[n, i]` is the flat row (`t * B + b`) of sequence n's step i, `mask[n, i]` whether that step is
    real (padding points at row 0 and is masked).
    """

    rows: np.ndarray
    mask: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def cut(cls, loss_mask: np.ndarray, max_seq_len: int) -> Sequences:
        """The sequences of a batch with this `[T, B]` loss mask (its autoreset rows say where episodes start)."""
        starts = episode_starts(loss_mask)
        steps, envs = starts.shape
        # Steps since the episode (or the batch) started, per copy: a sequence starts every max_seq_len of them.
        since = np.empty((steps, envs), dtype=np.int64)
        count = np.zeros(envs, dtype=np.int64)
        for t in range(steps):
            count = np.where(starts[t], 0, count + 1)
            since[t] = count
        begins = (since % max_seq_len == 0).T.ravel()  # copy by copy, in time order
        sequence = np.cumsum(begins) - 1
        first = np.flatnonzero(begins)
        position = np.arange(steps * envs) - first[sequence]
        env, t = np.divmod(np.arange(steps * envs), steps)
        rows = np.zeros((len(first), max_seq_len), dtype=np.int64)
        mask = np.zeros((len(first), max_seq_len), dtype=bool)
        rows[sequence, position] = t * envs + env
        mask[sequence, position] = True
        return cls(rows, mask, (steps, envs))

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, keep: np.ndarray) -> Sequences:
        """Only the sequences where `keep` ([N] bool) is true."""
        return Sequences(self.rows[keep], self.mask[keep], self.shape)

    def gather(self, column: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """A `[T, B, ...]` column (numpy or torch) as `[N, L, ...]` sequences (padding holds row 0's value, masked)."""
        return _rows(column)[_index(self.rows, column)]

    def first(self, column: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """A `[T, B, ...]` column's value at each sequence's first step, `[N, ...]` (the state it starts from)."""
        return _rows(column)[_index(self.rows[:, 0], column)]

    def scatter(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """`[N, L, ...]` per-step values (numpy, or torch with their gradient) back in the batch's `[T, B, ...]`
        layout (the real steps cover it)."""
        shape = (self.shape[0] * self.shape[1], *values.shape[2:])
        if isinstance(values, torch.Tensor):
            out = values.new_empty(shape)
            out[torch.from_numpy(self.rows[self.mask]).to(values.device)] = values[torch.from_numpy(self.mask)]
        else:
            out = np.empty(shape, dtype=values.dtype)
            out[self.rows[self.mask]] = values[self.mask]
        return out.reshape(*self.shape, *values.shape[2:])


def _rows(column: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """A `[T, B, ...]` column as `[T * B, ...]` rows."""
    column = column if isinstance(column, torch.Tensor) else np.asarray(column)
    return column.reshape(-1, *column.shape[2:])


def _index(rows: np.ndarray, column: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Row indices in the column's own kind (and device)."""
    return torch.from_numpy(rows).to(column.device) if isinstance(column, torch.Tensor) else rows

"""APPO's circular buffer (RLlib's): recent train batches, each reused a bounded number of times.

It holds at most `num_batches` batches; a full buffer drops its oldest on
`add`. `sample()` draws a random batch among those held and drops it once it
has been drawn `iterations_per_batch` times, so no batch trains more often
than that and old ones give way to fresh ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CircularBuffer:
    """A bounded FIFO of batches with per-batch use counts."""

    def __init__(self, num_batches: int, iterations_per_batch: int, seed: int = 0) -> None:
        self.num_batches = num_batches
        self.iterations_per_batch = iterations_per_batch
        self._batches: list[Any] = []
        self._uses: list[int] = []
        self._rng = np.random.default_rng(seed)
        self.num_dropped_unused = 0  # batches evicted before being drawn at all

    def __len__(self) -> int:
        return len(self._batches)

    def add(self, batch: Any) -> None:
        if len(self._batches) == self.num_batches:
            self.num_dropped_unused += self._uses[0] == 0
            del self._batches[0], self._uses[0]
        self._batches.append(batch)
        self._uses.append(0)

    def sample(self) -> Any:
        """A random held batch; it leaves the buffer with its `iterations_per_batch`-th draw."""
        if not self._batches:
            raise IndexError("sample() from an empty CircularBuffer")
        i = int(self._rng.integers(len(self._batches)))
        batch = self._batches[i]
        self._uses[i] += 1
        if self._uses[i] >= self.iterations_per_batch:
            del self._batches[i], self._uses[i]
        return batch

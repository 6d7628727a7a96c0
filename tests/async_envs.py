"""Envs for the asynchronous-sampling tests (importable as `async_envs` with tests/ on the path)."""

from __future__ import annotations

import time
from pathlib import Path

from user_envs import CrashAtStepEnv


class HangAtStepEnv(CrashAtStepEnv):
    """CrashAtStepEnv that also sleeps forever, in the env first reset with `hang_seed`, from its `hang_at_step`-th
    step on once `marker` exists (at once without one); the env first reset with `mark_seed` creates `marker` at
    its first step.

    A hung runner neither answers nor dies: only a sample timeout can tell. Its replacement draws other seeds,
    so it does not hang again. With the marker written by another runner's replacement, the hang (and the
    timeout's clock) starts only once that replacement samples, however long it took to start.
    """

    def __init__(self, crash_seed: int = -1, crash_at_step: int = 0, hang_seed: int = -1,
                 hang_at_step: int = 0, mark_seed: int = -1, marker: str | None = None) -> None:
        super().__init__(crash_seed, crash_at_step)
        self.hang_seed, self.hang_at_step = hang_seed, hang_at_step
        self.mark_seed, self.marker = mark_seed, marker

    def step(self, action):
        if self.first_seed == self.mark_seed and self.marker is not None:
            Path(self.marker).touch()
        if (self.first_seed == self.hang_seed and self.num_steps + 1 >= self.hang_at_step
                and (self.marker is None or Path(self.marker).exists())):
            while True:
                time.sleep(60)
        return super().step(action)

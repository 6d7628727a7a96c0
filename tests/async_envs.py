"""Envs for the asynchronous-sampling tests (importable as `async_envs` with tests/ on the path)."""

from __future__ import annotations

import time

from user_envs import CrashAtStepEnv


class HangAtStepEnv(CrashAtStepEnv):
    """CrashAtStepEnv that also sleeps forever at its `hang_at_step`-th step, in the env first reset with `hang_seed`.

    A hung runner neither answers nor dies: only a sample timeout can tell. Its
    replacement draws other seeds, so it does not hang again.
    """

    def __init__(self, crash_seed: int = -1, crash_at_step: int = 0, hang_seed: int = -1,
                 hang_at_step: int = 0) -> None:
        super().__init__(crash_seed, crash_at_step)
        self.hang_seed, self.hang_at_step = hang_seed, hang_at_step

    def step(self, action):
        if self.first_seed == self.hang_seed and self.num_steps + 1 == self.hang_at_step:
            while True:
                time.sleep(60)
        return super().step(action)

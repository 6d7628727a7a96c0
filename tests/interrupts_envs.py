"""The env of tests/test_interrupts.py (importable as `interrupts_envs` with tests/ on the path)."""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym


class GateEnv(gym.Wrapper):
    """CartPole that holds the run in the middle of an iteration until the test opens a gate.

    The process's `block_at_step`-th env step (counted over every GateEnv of the process, once per
    process) touches `<gate_file>.waiting` and waits until `gate_file` exists. A test can then
    signal the run while an iteration is in flight for certain, not by timing, and let it finish.
    """

    steps_in_process = 0

    def __init__(self, gate_file: str, block_at_step: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.gate, self.block_at_step = Path(gate_file), block_at_step

    def step(self, action):
        GateEnv.steps_in_process += 1
        if GateEnv.steps_in_process == self.block_at_step:
            self.gate.with_name(self.gate.name + ".waiting").touch()
            while not self.gate.exists():
                time.sleep(0.02)
        return self.env.step(action)

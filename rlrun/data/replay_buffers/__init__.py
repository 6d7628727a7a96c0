"""Replay buffers for off-policy algorithms: a FIFO ring of env steps, uniform or prioritized."""

from __future__ import annotations

from rlrun.data.replay_buffers.prioritized_replay_buffer import PrioritizedReplayBuffer
from rlrun.data.replay_buffers.replay_buffer import ReplayBuffer
from rlrun.data.replay_buffers.sum_tree import SumTree

# `replay_buffer.type` -> class.
REPLAY_BUFFERS: dict[str, type[ReplayBuffer]] = {"uniform": ReplayBuffer, "prioritized": PrioritizedReplayBuffer}

__all__ = ["REPLAY_BUFFERS", "PrioritizedReplayBuffer", "ReplayBuffer", "SumTree"]

"""What `rlrun-eval` was asked for, apart from the evaluation: `rlrun-eval --help` and a mistaken argument
answer from this module alone, without importing torch and the envs that an evaluation needs."""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_FORMATS = ("auto", "mp4", "gif")


@dataclass
class EvalRequest:
    """What `rlrun-eval` was asked for (its `key=value` arguments)."""

    checkpoint: str
    episodes: int = 10
    seed: int | None = None  # None: the run's seed
    video: bool = False
    video_episodes: int = 1
    video_format: str = "auto"
    explore: bool = False  # true: the stochastic policy (as in training) instead of the greedy one
    record: str | None = None  # write the episodes as a Minari dataset: a directory or a local dataset id

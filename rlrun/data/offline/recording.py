"""Cut the time-major batches an EnvRunner samples into whole episodes, for recording datasets.

The runner's vector env autoresets in NEXT_STEP mode: a row with
`loss_mask = 0` is the reset step after an episode's end (it is no transition),
and the observation after an episode's last step -- its true final observation
-- is the next row's `obs` (or the batch's `bootstrap_obs` at a batch's end).
`EnvRunner.sample_episodes(..., record=True)` feeds every batch (with the env's raw
observations and rewards where normalisation is on) to an
`EpisodeCollector` and takes its finished episodes in the order the runner's
own episode metrics list them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rlrun.core.columns import Columns
from rlrun.data.offline.writer import RecordedEpisode
from rlrun.env.normalization import RAW_COLUMNS

_STEP_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS, Columns.TRUNCATEDS,
                 Columns.ACTION_LOGP)


class EpisodeCollector:
    """Per sub-env: the rows of the episode in progress, and the finished episodes not yet taken."""

    def __init__(self, num_envs: int) -> None:
        self._partial: list[list[dict[str, np.ndarray]]] = [[] for _ in range(num_envs)]
        self._finished: list[deque[RecordedEpisode]] = [deque() for _ in range(num_envs)]

    def add(self, batch: dict[str, np.ndarray]) -> None:
        """Take in a `[T, B]` batch sampled right after the previous one (or after a reset).

        A dataset holds the env's own observations and rewards: where normalisation changed them,
        the batch's raw columns (`RAW_COLUMNS`) take their place.
        """
        batch = {**batch, **{column: batch[raw] for column, raw in RAW_COLUMNS.items() if raw in batch}}
        done = batch[Columns.TERMINATEDS] | batch[Columns.TRUNCATEDS]
        steps = len(done)
        for env in range(done.shape[1]):
            start = 0
            for end in np.flatnonzero(done[:, env]):
                self._partial[env].append(_rows(batch, env, start, end + 1))
                final = batch[Columns.OBS][end + 1, env] if end + 1 < steps else batch[Columns.BOOTSTRAP_OBS][env]
                self._finished[env].append(_episode(self._partial[env], final))
                self._partial[env] = []
                start = end + 1
            self._partial[env].append(_rows(batch, env, start, steps))

    def pop(self, env: int) -> RecordedEpisode:
        """The oldest finished episode of sub-env `env` not taken yet."""
        return self._finished[env].popleft()


def _rows(batch: dict[str, np.ndarray], env: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """Sub-env `env`'s transitions in rows [start, stop): the autoreset rows (loss_mask 0) left out."""
    rows = np.arange(start, stop)
    rows = rows[batch[Columns.LOSS_MASK][rows, env]]
    return {k: batch[k][rows, env] for k in _STEP_COLUMNS}


def _episode(parts: list[dict[str, np.ndarray]], final_obs: np.ndarray) -> RecordedEpisode:
    steps = {k: np.concatenate([p[k] for p in parts]) for k in _STEP_COLUMNS}
    return RecordedEpisode(
        observations=np.concatenate([steps[Columns.OBS], final_obs[None]]),
        actions=steps[Columns.ACTIONS],
        rewards=steps[Columns.REWARDS],
        terminations=steps[Columns.TERMINATEDS],
        truncations=steps[Columns.TRUNCATEDS],
        action_logp=steps[Columns.ACTION_LOGP],
    )

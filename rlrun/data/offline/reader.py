"""Stream one learner's shard of a dataset as shuffled training rows, with bounded memory.

Learner `rank` of `world_size` owns the episodes `rank, rank + world_size, ...`
(disjoint shards). Each pass over its shard (an epoch) visits the episodes in a
fresh random order, grouped into chunks of at most `memory_rows` rows (an episode
longer than that is a chunk of its own); a chunk is read from disk, its rows are
shuffled and served in order. So at most one chunk is in memory, and a dataset
larger than RAM trains; a shard that fits in one chunk is read from disk once and
only reshuffled every epoch.

The order of everything is a function of (seed, rank, epoch, chunk), so the
reader's whole state is the number of rows it has served: `seek(rows)` finds its
place again from the episode lengths alone, without reading data. That is what
makes resuming from a checkpoint exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlrun.core.columns import Columns
from rlrun.core.packed_space import PackedSpace
from rlrun.data.offline.dataset import DatasetInfo, OfflineDataError


@dataclass(frozen=True)
class _Chunk:
    episodes: np.ndarray  # dataset episode indices, in the epoch's order
    start: int  # rows of the epoch before this chunk


class ShardReader:
    """Serves `next_rows(n)` from this rank's shard; `rows_served` is its entire state."""

    def __init__(
        self,
        info: DatasetInfo,
        *,
        rank: int,
        world_size: int,
        memory_rows: int,
        seed: int,
        gamma: float,
        bootstrap: bool = False,
    ) -> None:
        self.info = info
        self.rank = rank
        self.memory_rows = memory_rows
        self.seed = seed
        self.gamma = gamma
        self.bootstrap = bootstrap
        self._shard = np.arange(len(info.episode_lengths))[rank::world_size]
        if len(self._shard) == 0:
            raise OfflineDataError(f"offline.dataset={info.spec} has {len(info.episode_lengths)} episodes, fewer "
                                   f"than learners.num={world_size}: every learner needs a shard of its own")
        self.rows_per_epoch = int(info.episode_lengths[self._shard].sum())
        self._dataset: Any = None
        self._epoch_chunks: tuple[int, list[_Chunk]] | None = None
        self._loaded: tuple[int, int, dict[str, np.ndarray]] | None = None  # (epoch, chunk index, shuffled rows)
        # A shard that fits in one chunk is read from disk once: its episodes' rows, kept for the next epochs.
        self._episodes: dict[int, dict[str, np.ndarray]] = {}
        self.rows_served = 0

    # -- position ----------------------------------------------------------------------

    def seek(self, rows_served: int) -> None:
        """Continue as if `rows_served` rows had been served (what a checkpoint stores)."""
        self.rows_served = rows_served

    def _chunks(self, epoch: int) -> list[_Chunk]:
        if self._epoch_chunks is None or self._epoch_chunks[0] != epoch:
            order = np.random.default_rng((self.seed, self.rank, epoch)).permutation(self._shard)
            chunks, current, start, size = [], [], 0, 0
            for episode in order:
                length = int(self.info.episode_lengths[episode])
                if current and size + length > self.memory_rows:
                    chunks.append(_Chunk(np.array(current), start))
                    current, start, size = [], start + size, 0
                current.append(episode)
                size += length
            chunks.append(_Chunk(np.array(current), start))
            self._epoch_chunks = (epoch, chunks)
        return self._epoch_chunks[1]

    # -- reading -----------------------------------------------------------------------

    def next_rows(self, num_rows: int) -> dict[str, np.ndarray]:
        """The next `num_rows` training rows (obs, actions, rewards, terminateds, value_targets)."""
        parts: list[dict[str, np.ndarray]] = []
        needed = num_rows
        while needed > 0:
            epoch, offset = divmod(self.rows_served, self.rows_per_epoch)
            chunks = self._chunks(epoch)
            index = max(i for i, c in enumerate(chunks) if c.start <= offset)
            rows = self._chunk_rows(epoch, index, chunks[index], keep=len(chunks) == 1)
            begin = offset - chunks[index].start
            take = min(needed, len(rows[Columns.OBS]) - begin)
            parts.append({k: v[begin:begin + take] for k, v in rows.items()})
            needed -= take
            self.rows_served += take
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _chunk_rows(self, epoch: int, index: int, chunk: _Chunk, keep: bool) -> dict[str, np.ndarray]:
        if self._loaded is None or self._loaded[:2] != (epoch, index):
            self._loaded = None  # drop the previous chunk before reading the next: one chunk in memory
            if keep and self._episodes:
                episodes = [self._episodes[int(i)] for i in chunk.episodes]
            else:
                episodes = [episode_rows(e, self.info.action_space, self.gamma, self.bootstrap)
                            for e in self._read(chunk.episodes)]
                self._episodes = dict(zip(chunk.episodes.tolist(), episodes)) if keep else {}
            rows = {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}
            perm = np.random.default_rng((self.seed, self.rank, epoch, index)).permutation(len(rows[Columns.OBS]))
            self._loaded = (epoch, index, {k: v[perm] for k, v in rows.items()})
        return self._loaded[2]

    def _read(self, episodes: np.ndarray) -> list[dict[str, Any]]:
        if self._dataset is None:
            from rlrun.data.offline.dataset import open_dataset

            self._dataset = open_dataset(self.info.spec)
        by_id = {int(e["id"]): e for e in self._dataset.storage.get_episodes(episodes.tolist())}
        space = self.info.observation_space
        if isinstance(space, PackedSpace):  # a structured dataset's observations, packed as the env's are
            return [{**by_id[int(i)], "observations": space.pack(by_id[int(i)]["observations"])} for i in episodes]
        return [by_id[int(i)] for i in episodes]


def episode_rows(
    episode: dict[str, Any], action_space: gym.Space, gamma: float, bootstrap: bool = False
) -> dict[str, np.ndarray]:
    """One Minari episode as training rows: its n observations before each action (the last one is only a
    next observation) and the discounted return-to-go of each row (to the episode's end).

    Observations keep an integer dtype (uint8 pixels: the module's encoder makes them float on the learner's
    device, per minibatch); float ones are float32.

    With `bootstrap`, each row also gets the episode's final observation and gamma ** (steps to the end),
    0 when the episode terminated: a truncated episode's value target adds the discounted value of where it
    was cut off, so rows late in a cut-off episode are not mistaken for rows before a failure.
    """
    rewards = np.asarray(episode["rewards"], dtype=np.float32)
    returns = np.empty_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    actions = np.asarray(episode["actions"], dtype=action_space.dtype)
    observations = np.asarray(episode["observations"])
    if np.issubdtype(observations.dtype, np.floating):
        observations = observations.astype(np.float32, copy=False)  # the learner's float width
    terminations = np.asarray(episode["terminations"], dtype=bool)
    rows = {
        Columns.OBS: observations[:-1],
        Columns.ACTIONS: actions.reshape(len(rewards), *action_space.shape),
        Columns.REWARDS: rewards,
        Columns.TERMINATEDS: terminations,
        Columns.VALUE_TARGETS: returns,
    }
    if bootstrap:
        n = len(rewards)
        cut_off = not terminations[-1]
        rows[Columns.FINAL_OBS] = np.repeat(observations[-1:], n, axis=0)
        rows[Columns.FINAL_DISCOUNT] = (gamma ** np.arange(n, 0, -1) * cut_off).astype(np.float32)
    return rows

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

Frame stacks (`frame_stack = K > 1`: observations `[K * C, H, W]`, K frames of C
channels on axis 0, newest last, as Atari's 4 grey 84x84 frames, C = 1, or
RGB ones, C = 3). Consecutive observations of an episode share K - 1 frames, so
the buffer stores only each row's newest frame (`obs[:, :, -C:]`, storage
`[rows, envs, C, H, W]`: the DQN Zoo / Dopamine layout, 1/K of the memory of
whole stacks) and rebuilds a sampled observation and next observation from the
K - 1 rows before it in the same column. Two bytes per slot
say how: `frame_depth`, how many of the stack's frames are rows of the same
episode (this one and those before it, at most K), and `frame_padding`, what
fills the older slots of an episode's first K - 1 rows. The padding is read from
the stack of an episode's first row when it is added (the row after a
`loss_mask = 0` row, an autoreset or a stream cut, and the stream's first row):
older slots all equal to the newest frame are gymnasium's `"reset"` padding, all
zero envpool's zero padding; any other older slots (an episode entered mid-way
after a stream cut or a resume, another padding scheme) are kept as they are for
that one row. So a rebuilt stack is always exactly what the env runner saw. A
fragment's first row that does not continue its column's stack (the env runner
restarted its episodes) cuts that stream as a failed env runner's fragment does;
a later row whose older frames are not the previous stack shifted by one frame
is refused (the env does not stack K frames on axis 0). A row starts a transition
only while every row its stack reads is still in the ring -- the oldest rows'
histories are evicted first -- and its next observation reads only newer rows.
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
# Frame storage (`frame_stack > 1`), per slot: frames of its stack that are rows of its episode, and the padding.
FRAME_DEPTH = "frame_depth"
FRAME_PADDING = "frame_padding"
PAD_RESET, PAD_ZERO, PAD_KEPT = 0, 1, 2
# State keys of the older slots kept for episode starts with `PAD_KEPT`: their flat slots and the frames.
KEPT_SLOTS = "kept_stack_slots"
KEPT_FRAMES = "kept_stack_frames"


class ReplayBuffer:
    """Uniform replay over the last `capacity` env steps of every sub-env (FIFO eviction)."""

    def __init__(self, capacity: int, seed: int = 0, num_envs: int | None = None, *, frame_stack: int = 1) -> None:
        """`num_envs`: sub-env streams (all env runners' envs); None = as many as the first fragment has.

        `frame_stack`: K > 1 for observations that stack K frames on axis 0 (`env.atari.frame_stack`; RGB
        frames as 3 channels each): each frame is stored once (see the module doc); 1 stores whole observations.
        """
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.capacity = capacity
        self.num_envs = num_envs
        self.frame_stack = frame_stack
        self._generator = torch.Generator().manual_seed(seed)
        self._storage: dict[str, np.ndarray] = {}
        self._kept: dict[int, np.ndarray] = {}  # flat slot -> older K - 1 frames of a `PAD_KEPT` episode start
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
        columns = {key: np.asarray(batch[key]) for key in STORED}
        kept: dict[tuple[int, int], np.ndarray] = {}
        if self.frame_stack > 1:
            kept = self._frame_columns(columns)
        length = len(columns[Columns.REWARDS])
        steps = min(length, self._rows)
        mask = columns[Columns.LOSS_MASK]
        # A fragment longer than the ring evicts its own first steps before they are stored.
        self._evicted += int(mask[:length - steps].sum())
        rows = (self._pos + np.arange(steps)) % self._rows
        overwritten = max(0, self._size + steps - self._rows)
        if overwritten:
            self._evicted += int(self._storage[Columns.LOSS_MASK][self._oldest_rows(overwritten)].sum())
        if self._kept:
            self._drop_kept(rows)
        for key, value in columns.items():
            self._storage[key][rows] = value[-steps:]
        for (t, env), older in kept.items():
            if t >= length - steps:
                self._kept[int(rows[t - (length - steps)]) * self.num_envs + env] = older
        self._added += int(mask.sum())
        self._pos = (self._pos + steps) % self._rows
        self._size = min(self._size + steps, self._rows)
        self._on_add(rows)

    def _cut_streams(self) -> None:
        """End every stream at the newest row, as an autoreset would: the step before it is truncated (it
        bootstraps from the newest row's observation) and the newest row starts no transition."""
        self._cut_envs(np.arange(self.num_envs))
        self._on_add(np.array([(self._pos - 1) % self._rows]))

    def _cut_envs(self, envs: np.ndarray) -> None:
        """`_cut_streams` for the streams of `envs` only, without refreshing priorities (the caller does)."""
        newest = (self._pos - 1) % self._rows
        if self._size >= 2:
            self._storage[Columns.TRUNCATEDS][(newest - 1) % self._rows, envs] = True
        self._evicted += int(self._storage[Columns.LOSS_MASK][newest, envs].sum())
        self._storage[Columns.LOSS_MASK][newest, envs] = False

    def _allocate(self, batch: Mapping[str, np.ndarray]) -> None:
        obs = np.asarray(batch[Columns.OBS])
        if self.frame_stack > 1 and (obs.ndim < 3 or obs.shape[2] % self.frame_stack):
            raise ValueError(f"frame_stack={self.frame_stack} needs observations that stack {self.frame_stack} "
                             f"frames on axis 0, got observations of shape {obs.shape[2:]}")
        self.num_envs = self.num_envs or batch[Columns.REWARDS].shape[1]
        # At least K rows, so that the newest row's stack can always be rebuilt.
        self._rows = max(2, self.frame_stack, math.ceil(self.capacity / self.num_envs))
        for key in STORED:
            value = np.asarray(batch[key])
            shape = value.shape[2:]
            if key == Columns.OBS and self.frame_stack > 1:
                shape = (shape[0] // self.frame_stack, *shape[1:])  # one frame
            self._storage[key] = np.zeros((self._rows, self.num_envs, *shape), dtype=value.dtype)
        if self.frame_stack > 1:
            for key in (FRAME_DEPTH, FRAME_PADDING):
                self._storage[key] = np.zeros((self._rows, self.num_envs), dtype=np.uint8)

    def _frame_columns(self, columns: dict[str, np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
        """Replace `columns`' stacks by their newest frames plus `frame_depth` and `frame_padding`; return the
        older slots to keep, by (fragment step, sub-env), of episode starts padded neither way.

        Checks the whole fragment before anything is written, so a refused fragment leaves the buffer as it was.
        A first row that does not continue its sub-env's stored stream (the env runner restarted its episodes:
        a resume that could not restore them) cuts that stream, as `_cut_streams` does.
        """
        obs, mask = columns[Columns.OBS], columns[Columns.LOSS_MASK]
        steps, envs, k = obs.shape[0], obs.shape[1], self.frame_stack
        obs = obs.reshape(steps, envs, k, obs.shape[2] // k, *obs.shape[3:])  # [T, B, K, C, ...]
        if self._size:
            last = (self._pos - 1) % self._rows
            prev_mask = self._storage[Columns.LOSS_MASK][last]
            prev_depth = self._storage[FRAME_DEPTH][last]
            prev_padding = self._storage[FRAME_PADDING][last]
        else:
            prev_mask = np.zeros(envs, dtype=bool)
            prev_depth = prev_padding = np.zeros(envs, dtype=np.uint8)
        # The row after a loss_mask-0 row (an autoreset, a cut stream) or the stream's first row starts an episode.
        starts = ~np.concatenate([prev_mask[None], mask[:-1]]).astype(bool)
        shifted = np.ones((steps, envs), dtype=bool)
        if self._size:
            last_stack = self._frame_stacks(np.full(envs, last), np.arange(envs))
            shifted[0] = _all_equal(obs[0, :, :-1], last_stack[:, 1:], 1)
        shifted[1:] = _all_equal(obs[1:, :, :-1], obs[:-1, :, 1:], 2)
        bad = np.argwhere(~starts[1:] & ~shifted[1:])
        if len(bad):
            t, env = bad[0]
            raise ValueError(f"frame_stack={k}: the observation of sub-env {env} at step {t + 1} of a fragment is "
                             f"not the previous step's stack shifted by one frame; the env must stack {k} frames "
                             "on axis 0, newest last (env.atari.frame_stack), with no observation filter")
        broken = np.flatnonzero(~starts[0] & ~shifted[0])
        if len(broken):
            log.warning("replay buffer: the observations of sub-env(s) %s do not continue their stored streams "
                        "(the env runner restarted their episodes); those streams are cut here", broken.tolist())
            self._cut_envs(broken)
            starts[0, broken] = True
        start_t, start_env = np.nonzero(starts)
        older = obs[start_t, start_env, :-1]
        reset = _all_equal(older, obs[start_t, start_env, -1:], 1)
        zero = _all_equal(older, np.zeros((), dtype=obs.dtype), 1)
        start_padding = np.zeros((steps, envs), dtype=np.uint8)
        start_padding[start_t, start_env] = np.where(reset, PAD_RESET, np.where(zero, PAD_ZERO, PAD_KEPT))
        kept = {(int(start_t[i]), int(start_env[i])): older[i].copy() for i in np.flatnonzero(~reset & ~zero)}
        depth = np.empty((steps, envs), dtype=np.uint8)
        padding = np.empty((steps, envs), dtype=np.uint8)
        for t in range(steps):
            prev_depth = np.where(starts[t], 1, np.minimum(prev_depth + 1, k))
            prev_padding = np.where(starts[t], start_padding[t], prev_padding)
            depth[t], padding[t] = prev_depth, prev_padding
        columns[Columns.OBS] = obs[:, :, -1]
        columns[FRAME_DEPTH], columns[FRAME_PADDING] = depth, padding
        return kept

    def _drop_kept(self, rows: np.ndarray) -> None:
        """Forget the kept older slots of the slots in `rows`, which are about to be overwritten."""
        written = np.zeros(self._rows, dtype=bool)
        written[rows] = True
        for slot in [s for s in self._kept if written[s // self.num_envs]]:
            del self._kept[slot]

    def _on_add(self, rows: np.ndarray) -> None:
        """Called after `rows` were written (the prioritized buffer sets their priorities)."""

    def _oldest_rows(self, count: int) -> np.ndarray:
        return (self._pos - self._size + np.arange(count)) % self._rows

    # -- sampling ----------------------------------------------------------------------

    def sampleable(self) -> np.ndarray:
        """`[rows, envs]`: which steps may start a transition (real env steps, not the newest row, and with
        frame storage only while every row their stack reads is stored)."""
        if not self._storage:
            return np.zeros((0, 0), dtype=bool)
        # Whole-array operations, no fancy indexing: uniform sampling calls this on every sample (1M slots: ~1 ms).
        ok = self._storage[Columns.LOSS_MASK].astype(bool)  # rows never written hold loss_mask 0
        ok[(self._pos - 1) % self._rows] = False
        if self.frame_stack > 1:  # only the K - 1 oldest rows can have stacks reaching past the ring's start
            oldest = self._oldest_rows(min(self.frame_stack - 1, self._size))
            ok[oldest] &= self._storage[FRAME_DEPTH][oldest] <= np.arange(1, len(oldest) + 1)[:, None]
        return ok

    def _sampleable_rows(self, rows: np.ndarray) -> np.ndarray:
        """`sampleable()` of `rows` only (`[len(rows), envs]`)."""
        ok = self._storage[Columns.LOSS_MASK][rows].astype(bool)
        ok[rows == (self._pos - 1) % self._rows] = False
        if self.frame_stack > 1:
            age = (rows - (self._pos - self._size)) % self._rows  # rows stored before this one
            ok &= self._storage[FRAME_DEPTH][rows] <= age[:, None] + 1
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
        return {
            Columns.OBS: self._stacks(row, env),
            Columns.ACTIONS: self._storage[Columns.ACTIONS][row, env],
            Columns.REWARDS: rewards.astype(np.float32),
            Columns.NEXT_OBS: self._stacks((row + steps) % self._rows, env),
            Columns.TERMINATEDS: self._storage[Columns.TERMINATEDS][last, env],
            Columns.N_STEP: steps.astype(np.float32),
            Columns.INDICES: indices,
        }

    def _stacks(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        """The observations stored at (`row`, `env`) pairs, in the env's dtype and shape: with frame storage,
        stacks rebuilt from the frames of the K - 1 rows before (module doc)."""
        if self.frame_stack == 1:
            return self._storage[Columns.OBS][row, env]
        stacks = self._frame_stacks(row, env)
        return stacks.reshape(len(stacks), -1, *stacks.shape[3:])

    def _frame_stacks(self, row: np.ndarray, env: np.ndarray) -> np.ndarray:
        """`_stacks` with the stack axis apart, `[N, K, C, ...]`."""
        frames = self._storage[Columns.OBS]
        k = self.frame_stack
        depth = self._storage[FRAME_DEPTH][row, env].astype(np.int64)[:, None]
        back = np.arange(k - 1, -1, -1)  # how many rows back each slot's frame is, oldest slot first
        # Slots older than the episode read its first row: already right for "reset" padding.
        stacks = frames[(row[:, None] - np.minimum(back, depth - 1)) % self._rows, env[:, None]]
        padding = self._storage[FRAME_PADDING][row, env]
        stacks[(back >= depth) & (padding == PAD_ZERO)[:, None]] = 0
        for i in np.flatnonzero((padding == PAD_KEPT) & (depth[:, 0] < k)):
            d = int(depth[i, 0])
            first = (row[i] - d + 1) % self._rows
            stacks[i, :k - d] = self._kept[int(first) * self.num_envs + int(env[i])][d - 1:]
        return stacks

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
        """Storage bytes per stored row of one sub-env (each observation, or with frame storage each frame,
        once: no next-obs copy)."""
        slots = self._rows * (self.num_envs or 1)
        return sum(a.nbytes for a in self._state_arrays().values()) / max(1, slots)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = dict(self._storage)
        if self.frame_stack > 1 and self._storage:
            slots = np.array(sorted(self._kept), dtype=np.int64)
            frame = self._storage[Columns.OBS]
            arrays[KEPT_SLOTS] = slots
            arrays[KEPT_FRAMES] = (np.stack([self._kept[s] for s in slots.tolist()]) if len(slots) else
                                   np.zeros((0, self.frame_stack - 1, *frame.shape[2:]), dtype=frame.dtype))
        return arrays

    def get_state(self) -> dict[str, Any]:
        """Arrays and integers only (a checkpoint stores them as tensors, no pickle); frames, never stacks."""
        return {
            "storage": self._state_arrays(),
            "counters": np.array([self._rows, self._pos, self._size, self._added, self._evicted], dtype=np.int64),
            "rng": self._generator.get_state().numpy(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        storage = state["storage"]
        if Columns.REWARDS in storage:
            saved = np.shape(storage[KEPT_FRAMES])[1] + 1 if FRAME_DEPTH in storage else 1
            if saved != self.frame_stack:
                raise ValueError(f"it stores observations of {saved} stacked frame(s), this run's have "
                                 f"{self.frame_stack} (env.atari.frame_stack)")
        self._rows, self._pos, self._size, self._added, self._evicted = (int(v) for v in state["counters"])
        self._storage = {key: np.array(storage[key]) for key in (*STORED, FRAME_DEPTH, FRAME_PADDING)
                         if key in storage}
        self._kept = ({int(s): np.array(f) for s, f in zip(storage[KEPT_SLOTS], storage[KEPT_FRAMES])}
                      if KEPT_SLOTS in storage else {})
        if self._storage:
            self.num_envs = self._storage[Columns.REWARDS].shape[1]
        self._generator.set_state(torch.from_numpy(np.array(state["rng"], dtype=np.uint8)))


def _all_equal(a: np.ndarray, b: np.ndarray, lead: int) -> np.ndarray:
    """Whether `a == b` (broadcast) holds in every element after `a`'s first `lead` axes."""
    equal = a == b
    return equal.reshape(*a.shape[:lead], int(np.prod(a.shape[lead:]))).all(axis=-1)

"""Observation and reward normalisation by running statistics, as an env runner's own state.

`MeanStdFilter` (RLlib's name) maps each observation to `(obs - mean) / std`,
clipped to `[-clip, clip]`, with the running mean and std of every observation
seen so far. Reward scaling (SB3's `VecNormalize(norm_reward=True)`) divides
each reward by the running std of the discounted return `R <- gamma * R + r`,
which keeps value targets near unit scale whatever the env's reward scale.

Statistics are `(count, mean, var)` and merge exactly (Chan et al.'s parallel
formula), so several env runners can sample with their own copy and a driver
can combine what they learned: every runner also keeps a `delta`, the
statistics of what it saw since the driver last took them (`pop_delta`), and
`sync` replaces its statistics by the driver's merged ones plus that delta.
Everything here is plain numpy data (`get_state`), so it is checkpointed with
the env runner's other state.

A structured observation (a PackedSpace, rlrun/core/packed_space.py) is filtered part
by part: only its float Box parts are normalised, in place in the packed row, so
uint8 image parts stay pixels and discrete parts stay exact categories (a one-hot of
a normalised index would be meaningless).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlrun.core.columns import Columns
from rlrun.core.packed_space import Leaf, PackedSpace

if TYPE_CHECKING:
    from rlrun.env.runner_spec import NormalizationSpec

OBSERVATION_FILTERS = ("NoFilter", "MeanStdFilter")
# Where normalisation state sits in an env runner's (and the remote runners') state.
NORMALIZATION_KEY = "normalization"
# The batch columns normalisation changes -> where `EnvRunner.sample(keep_raw=True)` puts the env's own values.
RAW_COLUMNS = {Columns.OBS: "raw_obs", Columns.REWARDS: "raw_rewards", Columns.BOOTSTRAP_OBS: "raw_bootstrap_obs"}
# Keeps a constant feature (std 0) finite, as SB3's VecNormalize does.
EPSILON = 1e-8


def moments(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance over axis 0; `np.add.reduce` is several times faster than `np.mean`/`np.var`
    on the few rows of one env step."""
    mean = np.add.reduce(rows, axis=0) / len(rows)
    deviation = rows - mean
    return mean, np.add.reduce(deviation * deviation, axis=0) / len(rows)


class RunningMeanStd:
    """Count, mean and (population) variance of a stream of arrays of one shape."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.count = 0.0
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)

    def update(self, rows: np.ndarray) -> None:
        """Add `rows` (`[N, *shape]`)."""
        if len(rows):
            self.merge(len(rows), *moments(rows))

    def merge(self, count: float, mean: np.ndarray, var: np.ndarray) -> None:
        """Add the statistics of another stream: the result equals one stream of both (to float rounding)."""
        if count == 0:
            return
        total = self.count + count
        delta = mean - self.mean
        m2 = self.var * self.count + var * count + delta**2 * (self.count * count / total)
        self.mean = self.mean + delta * (count / total)
        self.var = m2 / total
        self.count = total

    def get_state(self) -> dict[str, Any]:
        # np.array: a 0-d mean (the returns') is a numpy scalar after arithmetic; checkpoints take arrays only.
        return {"count": self.count, "mean": np.array(self.mean), "var": np.array(self.var)}

    def set_state(self, state: dict[str, Any]) -> None:
        mean, var = np.asarray(state["mean"], dtype=np.float64), np.asarray(state["var"], dtype=np.float64)
        if mean.shape != self.mean.shape or var.shape != self.mean.shape:
            raise ValueError(f"normalisation statistics of shape {mean.shape}, this env's are {self.mean.shape}")
        self.count, self.mean, self.var = float(state["count"]), mean.copy(), var.copy()


class Statistics:
    """What normalisation learns: the observations' and the discounted returns' running mean/std (either optional)."""

    def __init__(self, obs_shape: tuple[int, ...], observations: bool, returns: bool) -> None:
        self.parts: dict[str, RunningMeanStd] = {}
        if observations:
            self.parts["obs"] = RunningMeanStd(obs_shape)
        if returns:
            self.parts["returns"] = RunningMeanStd()

    def merge(self, state: dict[str, Any]) -> None:
        """Add statistics in `get_state()` form (another runner's delta)."""
        for name, rms in self.parts.items():
            other = state[name]
            rms.merge(float(other["count"]), np.asarray(other["mean"]), np.asarray(other["var"]))

    def get_state(self) -> dict[str, Any]:
        return {name: rms.get_state() for name, rms in self.parts.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        missing = sorted(set(self.parts) - set(state))
        if missing:
            raise ValueError(f"normalisation statistics lack {missing}")
        for name, rms in self.parts.items():
            rms.set_state(state[name])


def float_leaves(space: PackedSpace) -> tuple[Leaf, ...]:
    """The parts of a structured observation that MeanStdFilter normalises: its float Box parts."""
    return tuple(leaf for leaf in space.feature_leaves
                 if isinstance(leaf.space, gym.spaces.Box) and leaf.dtype.kind == "f")


def statistics_shape(space: gym.Space) -> tuple[int, ...]:
    """The shape normalisation keeps statistics of: a Box's own, or a PackedSpace's float parts side by side."""
    if isinstance(space, PackedSpace):
        return (sum(int(np.prod(leaf.shape, dtype=np.int64)) for leaf in float_leaves(space)),)
    return tuple(space.shape)


class Normalizer:
    """One env runner's normalisation: its statistics, their delta since the last sync, and the envs' returns."""

    def __init__(self, spec: NormalizationSpec, obs_space: gym.Space, num_envs: int) -> None:
        self.filter_observations = spec.observation_filter == "MeanStdFilter"
        self.scale_rewards = bool(spec.normalize_rewards)
        self.clip_observations = spec.clip_observations
        self.clip_rewards = spec.clip_normalized_rewards
        self.gamma = spec.gamma
        self._obs_shape = statistics_shape(obs_space)
        self._float_leaves = float_leaves(obs_space) if isinstance(obs_space, PackedSpace) else None
        # What a filtered observation is stored as: float32, or a structured one's packed uint8 row.
        self.filtered_dtype = np.dtype(np.uint8 if self._float_leaves is not None else np.float32)
        self.stats = self._empty_statistics()
        self.delta = self._empty_statistics()
        # Each sub-env's discounted return so far (reward scaling's input); 0 at an episode's start.
        self.returns = np.zeros(num_envs)

    @property
    def enabled(self) -> bool:
        return self.filter_observations or self.scale_rewards

    def _empty_statistics(self) -> Statistics:
        return Statistics(self._obs_shape, self.filter_observations, self.scale_rewards)

    def observations(self, obs: np.ndarray, update: bool) -> np.ndarray:
        """`obs` (`[B, ...]`, in the env's dtype) filtered, as float32; `update` first adds them to the statistics.
        With the filter off, `obs` as it is (uint8 frames stay uint8)."""
        if not self.filter_observations:
            return obs
        if self._float_leaves is not None:
            return self._packed_observations(obs, update)
        rms = self.stats.parts["obs"]
        if update:
            self._add("obs", obs.astype(np.float64))
        scaled = (obs - rms.mean) / np.sqrt(rms.var + EPSILON)
        # minimum/maximum: np.clip costs twice as much on arrays this small, and this runs every env step.
        return np.minimum(np.maximum(scaled, -self.clip_observations), self.clip_observations).astype(np.float32)

    def _packed_observations(self, rows: np.ndarray, update: bool) -> np.ndarray:
        """Packed rows `[B, nbytes]` with their float parts filtered (in each part's own dtype), the rest as is."""
        if not self._float_leaves:
            return rows
        parts = [np.ascontiguousarray(rows[:, leaf.offset:leaf.offset + leaf.nbytes]).view(leaf.dtype)
                 for leaf in self._float_leaves]
        values = np.concatenate(parts, axis=1).astype(np.float64)
        if update:
            self._add("obs", values)
        rms = self.stats.parts["obs"]
        scaled = np.clip((values - rms.mean) / np.sqrt(rms.var + EPSILON), -self.clip_observations,
                         self.clip_observations)
        out, start = rows.copy(), 0
        for leaf, part in zip(self._float_leaves, parts):
            width = part.shape[1]
            out[:, leaf.offset:leaf.offset + leaf.nbytes] = scaled[:, start:start + width].astype(leaf.dtype).view(
                np.uint8)
            start += width
        return out

    def rewards(self, rewards: np.ndarray, live: np.ndarray, done: np.ndarray, update: bool) -> np.ndarray:
        """Scaled rewards of one step; `live` marks real transitions (not autoreset rows), `done` episode ends."""
        if not self.scale_rewards:
            return rewards
        self.returns[live] = self.returns[live] * self.gamma + rewards[live]
        if update:
            self._add("returns", self.returns[live])
        self.returns[done] = 0.0
        return self.scaled_rewards(rewards)

    def scaled_rewards(self, rewards: np.ndarray) -> np.ndarray:
        """`rewards` as the batches hold them (scaled and clipped with the current statistics), updating nothing:
        what a recurrent model that reads the previous reward saw in training."""
        if not self.scale_rewards:
            return rewards
        scaled = rewards / np.sqrt(self.stats.parts["returns"].var + EPSILON)
        return np.minimum(np.maximum(scaled, -self.clip_rewards), self.clip_rewards)

    def reset_returns(self) -> None:
        """All sub-envs start new episodes."""
        self.returns[:] = 0.0

    def _add(self, name: str, rows: np.ndarray) -> None:
        if len(rows):
            mean, var = moments(rows)
            self.stats.parts[name].merge(len(rows), mean, var)
            self.delta.parts[name].merge(len(rows), mean, var)

    def pop_delta(self) -> dict[str, Any]:
        """The statistics of what this runner saw since the last call, for the driver to merge."""
        delta = self.delta.get_state()
        self.delta = self._empty_statistics()
        return delta

    def sync(self, merged: dict[str, Any]) -> None:
        """Adopt the driver's merged statistics, plus what this runner saw that the driver has not merged yet."""
        self.stats.set_state(merged)
        self.stats.merge(self.delta.get_state())

    def get_state(self) -> dict[str, Any]:
        return {"stats": self.stats.get_state(), "delta": self.delta.get_state(), "returns": self.returns.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.stats.set_state(state["stats"])
        self.delta.set_state(state["delta"])
        returns = np.array(state["returns"], dtype=np.float64)
        if returns.shape != self.returns.shape:
            raise ValueError(f"normalisation state for {len(returns)} sub-envs, this runner has {len(self.returns)}")
        self.returns = returns

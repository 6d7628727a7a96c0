"""EnvRunner: a gymnasium vector env plus an inference copy of the RLModule.

`sample()` steps all sub-envs in lock-step and returns a time-major batch
`[T, B, ...]`. The vector env autoresets in gymnasium's NEXT_STEP mode: the step
after an episode ends only resets that sub-env, so its row gets
`loss_mask = 0`, and the row before it holds the episode's true final
observation in the next row's `obs` -- which is exactly what bootstrapping a
truncated episode needs, with no extra forward pass.

Observations keep their space's dtype through the batch (uint8 frames stay
uint8 up to the learner's device, where the model casts them); floating-point
observations are float32, the networks' precision (a float64 space, as MuJoCo's,
is stored as float32). With `observation_filter=MeanStdFilter` the batch holds
the filter's float32 output.

With `env.atari` the runner also derives Atari's training-only signals, a
terminal row per lost life and clipped rewards (rlrun/env/training_signals.py);
the episodes it reports are the env's own, whole games with their real scores.

A recurrent module's memory (`model.use_lstm`: its state, and the previous action and reward where the model
reads them; rlrun/core/rl_module/memory.py) is carried per env copy from step to step and from fragment to
fragment, and set back to the initial state where an episode starts: after the autoreset row, which still
belongs to the episode that ended. The batch records the memory fed into each row (`Columns.STATE_IN`,
`PREV_ACTIONS`, `PREV_REWARDS`) and the memory after the fragment (their bootstrap columns), from which
learners replay sequences (rlrun/core/learner/sequences.py); checkpoints carry it with the episodes in flight.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.callbacks import CALLBACK_METRICS, Episode, EpisodeHooks, build_callbacks
from rlrun.core.columns import BOOTSTRAP_COLUMNS, DEFAULT_MODULE_ID, Columns
from rlrun.core.rl_module.action_masking import action_mask, check_legal
from rlrun.core.rl_module.memory import Memory
from rlrun.env import env_state
from rlrun.env.env_creation import make_vector_env
from rlrun.env.normalization import NORMALIZATION_KEY, RAW_COLUMNS, Normalizer
from rlrun.env.runner_spec import EnvRunnerSpec, sampling_threads
from rlrun.env.training_signals import TrainingSignals
from rlrun.env.vector_infos import copy_infos

log = logging.getLogger("rlrun")
# Env runner `worker_index` seeds with `spec.seed + WORKER_SEED_STRIDE * worker_index`, its sub-envs with that + j.
WORKER_SEED_STRIDE = 10_000
# Where the training signals' state (lives) sits in the episodes in flight.
SIGNALS_KEY = "training_signals"


def buffer_dtype(space: gym.Space) -> np.dtype:
    """The dtype a batch stores observations of `space` in: the space's own, float32 for any float."""
    dtype = np.dtype(space.dtype) if space.dtype is not None else np.dtype(np.float32)
    return np.dtype(np.float32) if dtype.kind == "f" else dtype


class EnvRunner:
    """Samples one vector env with the current policy; keeps episodes running across calls.

    Built from an `EnvRunnerSpec` (`AlgorithmConfig.env_runner_spec()`), e.g.
    `EnvRunner(PPOConfig().environment("CartPole-v1").env_runner_spec()).sample()`.
    """

    def __init__(self, spec: EnvRunnerSpec, *, worker_index: int = 0) -> None:
        self.spec = spec
        self.worker_index = worker_index
        self.num_envs = spec.num_envs
        self.env_spec = spec.env
        self._seed = spec.seed + WORKER_SEED_STRIDE * worker_index
        self.env = make_vector_env(self.env_spec, self.num_envs, seed=self._seed)
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space
        self.module = spec.module.build(self.observation_space, self.action_space)
        self.module.eval()
        # A recurrent module's memory per env copy (None for a stateless module), set in `_reset`.
        self._memory: Memory | None = None
        self._generator = torch.Generator().manual_seed(self._seed)
        self.normalizer = Normalizer(spec.normalization, self.observation_space, self.num_envs)
        # The env's observation dtype, and the batch's (the filter's float32 when it normalizes observations).
        self._env_obs_dtype = buffer_dtype(self.observation_space)
        self._obs_dtype = self.normalizer.filtered_dtype if self.normalizer.filter_observations else self._env_obs_dtype
        self.training_signals = TrainingSignals.from_spec(self.env_spec, self.num_envs)
        self._obs: np.ndarray | None = None
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        self._episode_return = np.zeros(self.num_envs)
        self._episode_len = np.zeros(self.num_envs, dtype=np.int64)
        self._finished_returns: list[float] = []
        self._finished_lens: list[int] = []
        self._finished_envs: list[int] = []
        self.episode_hooks = EpisodeHooks(build_callbacks(spec.callbacks), self)
        if isinstance(self.action_space, gym.spaces.Box):
            self._action_low, self._action_high = self.action_space.low, self.action_space.high

    def _reset(self, seed: int | None = None, update_normalization: bool = True) -> None:
        obs, infos = self.env.reset(seed=self._seed if seed is None else seed)
        if self.training_signals is not None:
            self.training_signals.reset(infos)
        self._raw_obs = np.asarray(obs, dtype=self._env_obs_dtype)
        self._obs = self.normalizer.observations(self._raw_obs, update_normalization)
        self.normalizer.reset_returns()
        self._prev_done[:] = False
        if self.module.is_stateful():
            self._memory = Memory(self.module, self.num_envs)
        self._episode_return[:] = 0.0
        self._episode_len[:] = 0
        if self.episode_hooks.start:
            for i in range(self.num_envs):
                self.episode_hooks(self.episode_hooks.start, self._episode(i, infos))

    @sampling_threads
    def sample(
        self, num_timesteps: int | None = None, explore: bool = True, *, update_normalization: bool = True,
        keep_raw: bool = False, training_signals: bool = True,
    ) -> dict[str, np.ndarray]:
        """Step every sub-env `T` times; `T = ceil(num_timesteps / num_envs)` or the fragment length.

        With normalisation on (`env_runners.observation_filter`, `normalize_rewards`) the batch holds
        filtered observations and scaled rewards; `update_normalization=False` uses the statistics
        without adding to them (evaluation). Episode returns (`get_metrics`) stay in the env's units.
        `keep_raw=True` (recording) also returns the env's own observations and rewards (`RAW_COLUMNS`)
        when normalisation changes them; the raw observation is not checkpointed, so it is only for
        episodes started in this process (`sample_episodes` starts fresh ones).
        `training_signals=False` leaves out Atari's training-only signals (life-loss terminals, clipped
        rewards): the batch is then the game as played (evaluation, recording).
        """
        if self._obs is None:
            self._reset(update_normalization=update_normalization)
        steps = math.ceil(num_timesteps / self.num_envs) if num_timesteps else self.spec.rollout_fragment_length
        num_envs = self.num_envs
        obs_buf = np.empty((steps, num_envs, *self._obs.shape[1:]), dtype=self._obs_dtype)
        act_buf = np.empty((steps, num_envs, *self.action_space.shape), dtype=self.action_space.dtype)
        logp_buf = np.empty((steps, num_envs), dtype=np.float32)
        rew_buf = np.empty((steps, num_envs), dtype=np.float32)
        term_buf = np.empty((steps, num_envs), dtype=bool)
        trunc_buf = np.empty((steps, num_envs), dtype=bool)
        mask_buf = np.empty((steps, num_envs), dtype=bool)
        dist_buf: np.ndarray | None = None
        memory = self._memory
        if memory is not None:  # each row's memory: the state and previous action and reward fed into it
            memory_bufs = {column: np.empty((steps, *value.shape), dtype=value.dtype)
                           for column, value in memory.columns().items()}
        raw = keep_raw and self.normalizer.enabled
        if raw:
            raw_obs_buf = np.empty((steps, num_envs, *self._raw_obs.shape[1:]), dtype=self._env_obs_dtype)
            raw_rew_buf = np.empty_like(rew_buf)
        forward = self.module.forward_exploration if explore else self.module.forward_inference
        dist_cls = (
            self.module.get_exploration_action_dist_cls() if explore else self.module.get_inference_action_dist_cls()
        )
        for t in range(steps):
            obs_buf[t] = self._obs
            if raw:
                raw_obs_buf[t] = self._raw_obs
            with torch.inference_mode():
                obs = torch.from_numpy(self._obs)
                check_legal(action_mask(self.observation_space, obs), ~self._prev_done, self.action_space,
                            self.env_spec.id)
                inputs = {Columns.OBS: obs}
                if memory is not None:
                    memory.feed(inputs, memory_bufs, t)
                out = forward(inputs)
                dist_inputs = out[Columns.ACTION_DIST_INPUTS]
                dist = dist_cls.from_logits(dist_inputs)
                actions = dist.sample(self._generator) if explore else dist.deterministic_sample()
                logp = dist.logp(actions)
            if dist_buf is None:
                dist_buf = np.empty((steps, num_envs, dist_inputs.shape[-1]), dtype=np.float32)
            dist_buf[t] = dist_inputs.numpy()
            act_buf[t] = actions.numpy()
            logp_buf[t] = logp.numpy()
            obs, reward, terminated, truncated, infos = self.env.step(self._env_actions(act_buf[t]))
            self._raw_obs = np.asarray(obs, dtype=self._env_obs_dtype)
            self._obs = self.normalizer.observations(self._raw_obs, update_normalization)
            if raw:
                raw_rew_buf[t] = reward
            done = terminated | truncated
            live = ~self._prev_done
            train_reward, train_terminated = reward, terminated
            if self.training_signals is not None:
                shaped = self.training_signals.step(reward, terminated, infos, live)  # its lives stay current
                if training_signals:
                    train_reward, train_terminated = shaped
            rew_buf[t] = self.normalizer.rewards(train_reward, live, done, update_normalization)
            term_buf[t], trunc_buf[t] = train_terminated, truncated
            mask_buf[t] = live
            if memory is not None:
                memory.step(out[Columns.STATE_OUT].numpy(), act_buf[t], rew_buf[t])
                if not live.all():  # the autoreset row ended its episode: the next row starts one
                    memory.reset(~live)
            self._track_episodes(reward, done)
            if self.episode_hooks.any:
                self._call_episode_hooks(live, done, act_buf[t], reward, infos)
        batch = {
            Columns.OBS: obs_buf,
            Columns.ACTIONS: act_buf,
            Columns.ACTION_LOGP: logp_buf,
            Columns.ACTION_DIST_INPUTS: dist_buf,
            Columns.REWARDS: rew_buf,
            Columns.TERMINATEDS: term_buf,
            Columns.TRUNCATEDS: trunc_buf,
            Columns.LOSS_MASK: mask_buf,
            Columns.BOOTSTRAP_OBS: self._obs.copy(),
        }
        if memory is not None:
            batch.update(memory_bufs)
            batch.update({BOOTSTRAP_COLUMNS[column]: value.copy() for column, value in memory.columns().items()})
        if raw:
            batch.update({RAW_COLUMNS[Columns.OBS]: raw_obs_buf, RAW_COLUMNS[Columns.REWARDS]: raw_rew_buf,
                          RAW_COLUMNS[Columns.BOOTSTRAP_OBS]: self._raw_obs.copy()})
        return batch

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """Gaussian samples are stored as drawn (their logp is exact) and clipped only for the env."""
        if isinstance(self.action_space, gym.spaces.Box):
            return np.clip(actions, self._action_low, self._action_high)
        return actions

    def _track_episodes(self, reward: np.ndarray, done: np.ndarray) -> None:
        # A row right after `done` is the autoreset step: it starts a fresh episode.
        self._episode_return[self._prev_done] = 0.0
        self._episode_len[self._prev_done] = 0
        live = ~self._prev_done
        self._episode_return[live] += reward[live]
        self._episode_len[live] += 1
        if done.any():
            self._finished_returns.extend(self._episode_return[done].tolist())
            self._finished_lens.extend(self._episode_len[done].tolist())
            self._finished_envs.extend(np.flatnonzero(done).tolist())
        self._prev_done = done

    def _call_episode_hooks(self, live: np.ndarray, done: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                            infos: dict[str, Any]) -> None:
        """After `_track_episodes`: a start for each copy this (autoreset) step began, a step for each live one,
        an end for each that finished."""
        hooks = self.episode_hooks
        if hooks.start and not live.all():
            for i in np.flatnonzero(~live):
                hooks(hooks.start, self._episode(i, infos))
        if hooks.step:
            for i in np.flatnonzero(live):
                hooks(hooks.step, self._episode(i, infos, actions, rewards))
        if hooks.end and done.any():
            for i in np.flatnonzero(done):
                hooks(hooks.end, self._episode(i, infos, actions, rewards))

    def _episode(self, i: int, infos: dict[str, Any], actions: np.ndarray | None = None,
                 rewards: np.ndarray | None = None) -> Episode:
        """Copy `i`'s episode now, in the env's own units (raw observation and reward); its infos on demand."""
        return Episode(
            env_index=int(i), length=int(self._episode_len[i]), episode_return=float(self._episode_return[i]),
            last_obs=self._raw_obs[i], last_action=None if actions is None else actions[i],
            last_reward=None if rewards is None else float(rewards[i]), worker_index=self.worker_index,
            _infos=functools.partial(copy_infos, infos, int(i)),
        )

    def sample_episodes(self, num_episodes: int, explore: bool = False, record: bool = False) -> dict[str, list]:
        """`num_episodes` fresh episodes, returns and lengths; normalisation statistics are used, never updated.

        Each sub-env contributes a fixed quota (as in SB3's `evaluate_policy`):
        taking whichever episodes finish first would favour short ones. `record=True`
        also returns the episodes themselves (`episodes`: `RecordedEpisode`s, what
        `rlrun-eval ... record=` writes as a dataset). What the callbacks logged meanwhile is under
        `CALLBACK_METRICS`: from every episode the copies played, beyond a copy's quota too.
        """
        from rlrun.data.offline.recording import EpisodeCollector

        self._obs = None
        self.get_metrics()
        quota = [(num_episodes + i) // self.num_envs for i in range(self.num_envs)]
        returns: list[float] = []
        lens: list[int] = []
        collector = EpisodeCollector(self.num_envs) if record else None
        recorded = []
        logged: dict[str, list] = {}
        while len(returns) < num_episodes:
            batch = self.sample(num_timesteps=self.num_envs * 64, explore=explore, update_normalization=False,
                                keep_raw=record, training_signals=False)
            if collector is not None:
                collector.add(batch)
            metrics = self.get_metrics()
            for key, entries in metrics[CALLBACK_METRICS].items():
                logged.setdefault(key, []).extend(entries)
            for ret, length, env in zip(metrics["episode_returns"], metrics["episode_lens"], metrics["episode_envs"]):
                episode = collector.pop(env) if collector is not None else None
                if quota[env] > 0:
                    quota[env] -= 1
                    returns.append(ret)
                    lens.append(length)
                    if episode is not None:
                        recorded.append(episode)
        return {"episode_returns": returns, "episode_lens": lens, CALLBACK_METRICS: logged,
                **({"episodes": recorded} if record else {})}

    def get_metrics(self) -> dict[str, list[float]]:
        """Episodes finished since the last call (return, length, sub-env index) and what the callbacks logged
        (`CALLBACK_METRICS`), then forgets them."""
        metrics = {
            "episode_returns": self._finished_returns,
            "episode_lens": self._finished_lens,
            "episode_envs": self._finished_envs,
            CALLBACK_METRICS: self.episode_hooks.metrics_logger.pop(),
        }
        self._finished_returns, self._finished_lens, self._finished_envs = [], [], []
        return metrics

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load the learners' weights (module id -> weights) into the inference module."""
        self.module.set_state(weights[DEFAULT_MODULE_ID])

    def get_normalization(self) -> dict[str, Any]:
        """The normalisation statistics this runner uses now (`Statistics.get_state()` form)."""
        return self.normalizer.stats.get_state()

    def sync_normalization(self, merged: dict[str, Any]) -> None:
        """Use the driver's merged statistics (plus what this runner saw since it last reported)."""
        self.normalizer.sync(merged)

    def get_state(self) -> dict[str, Any]:
        """Plain data (numpy arrays, numbers, dicts) from which `set_state` continues sampling exactly.

        Besides the action-sampling RNG it holds the episodes in flight: the current
        observations, per-env return/length accumulators and the env's own state (see
        `rlrun.env.env_state`), and, with normalisation on, its statistics. Episodes
        finished since the last `get_metrics()` are not part of it; `Algorithm.train()`
        collects them every iteration.
        """
        state: dict[str, Any] = {"rng": self._generator.get_state().numpy(), "sampling": self._obs is not None}
        if self.normalizer.enabled:
            state[NORMALIZATION_KEY] = self.normalizer.get_state()
        if self._obs is not None:
            in_flight = self._capture_episodes()
            if in_flight is None:
                log.info("the state of env %s is not plain data; a resumed run starts fresh episodes",
                         self.env_spec.id)
            else:
                state["episodes_in_flight"] = in_flight
        return state

    def _capture_episodes(self) -> dict[str, Any] | None:
        """The episodes in flight as plain data, or None if the env's state is not plain data."""
        env = env_state.capture(self.env)
        if env is None:
            return None
        return {
            "env": env,
            "obs": self._obs.copy(),
            "episode_return": self._episode_return.copy(),
            "episode_len": self._episode_len.copy(),
            "prev_done": self._prev_done.copy(),
            **(self._memory.get_state() if self._memory is not None else {}),
            **({SIGNALS_KEY: self.training_signals.get_state()} if self.training_signals is not None else {}),
        }

    def _restore_episodes(self, in_flight: dict[str, Any]) -> None:
        """Continue the episodes `_capture_episodes` saw."""
        env_state.restore(self.env, in_flight["env"])
        self._obs = np.array(in_flight["obs"], dtype=self._obs_dtype)
        self._episode_return = np.array(in_flight["episode_return"], dtype=np.float64)
        self._episode_len = np.array(in_flight["episode_len"], dtype=np.int64)
        self._prev_done = np.array(in_flight["prev_done"], dtype=bool)
        if self.module.is_stateful():
            self._memory = Memory(self.module, self.num_envs)
            self._memory.set_state(in_flight)
        if self.training_signals is not None and SIGNALS_KEY in in_flight:
            self.training_signals.set_state(in_flight[SIGNALS_KEY])

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from `get_state()`; an env whose state could not be captured restarts its episodes.

        A state without normalisation statistics (saved with normalisation off, or by an older
        rlrun) leaves this runner's statistics as they are.
        """
        self._generator.set_state(torch.from_numpy(np.array(state["rng"], dtype=np.uint8)))
        if self.normalizer.enabled and NORMALIZATION_KEY in state:
            self.normalizer.set_state(state[NORMALIZATION_KEY])
        in_flight = state.get("episodes_in_flight")
        if in_flight is not None:
            self._restore_episodes(in_flight)
        elif state["sampling"]:
            log.warning("env %s: episodes in flight at the checkpoint cannot be restored; starting fresh ones",
                        self.env_spec.id)
            # A seed drawn from the restored RNG: deterministic, and not a replay of the run's first episodes.
            self._reset(seed=int(torch.randint(2**31 - 1, (1,), generator=self._generator)))

    def stop(self) -> None:
        self.env.close()


def summarize_episodes(returns: Sequence[float], lens: Sequence[int]) -> dict[str, float]:
    """Return mean/std/min/max and length mean/min/max of finished episodes (evaluation reports)."""
    returns_arr, lens_arr = np.asarray(returns, dtype=np.float64), np.asarray(lens)
    return {
        "episode_return_mean": float(returns_arr.mean()),
        "episode_return_std": float(returns_arr.std()),
        "episode_return_min": float(returns_arr.min()),
        "episode_return_max": float(returns_arr.max()),
        "episode_len_mean": float(lens_arr.mean()),
        "episode_len_min": int(lens_arr.min()),
        "episode_len_max": int(lens_arr.max()),
        "num_episodes": len(returns_arr),
    }

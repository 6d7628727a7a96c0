"""MultiAgentEnvRunner: `num_envs` copies of a PettingZoo ParallelEnv and one inference module per policy.

Every (env copy, agent) pair is one column of its module's time-major batch, so a
module's batch has the single-agent layout `[T, B_module, ...]` and every algorithm's
learner trains it unchanged. Each step runs one batched forward pass per module over
all of its columns. An agent that has left the env (done early) or has not joined yet
is not live: its rows get `loss_mask = 0` and keep its last observation, which is the
bootstrap observation its truncated episode needs. When every agent of a copy has
left, the copy resets on the next step, a row masked for all of its agents: the same
NEXT_STEP convention as the single-agent EnvRunner. Observations keep their space's dtype
(`buffer_dtype`: uint8 stays uint8, floats are float32), as in the single-agent EnvRunner.

A recurrent module (`model.use_lstm`) keeps a memory per column (rlrun/core/rl_module/memory.py), recorded
per row as in the single-agent runner, and held at the initial state while its agent is not in play and on
the columns of a copy that resets: the row after a masked one starts a learner's sequence, from the initial
state recorded there.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.callbacks import CALLBACK_METRICS, Episode, EpisodeHooks, build_callbacks
from rlrun.core.columns import BOOTSTRAP_COLUMNS, Columns
from rlrun.core.rl_module import MultiRLModule
from rlrun.core.rl_module.action_masking import action_mask, check_legal
from rlrun.core.rl_module.memory import Memory
from rlrun.env import env_state
from rlrun.env.env_runner import WORKER_SEED_STRIDE, EnvRunner, buffer_dtype
from rlrun.env.multi_agent.creation import make_parallel_env
from rlrun.env.multi_agent.mapping import ModuleSpaces, PolicyMapping, has_state
from rlrun.env.normalization import Normalizer
from rlrun.env.runner_spec import EnvRunnerSpec, sampling_threads


class MultiAgentBatch(dict):
    """Module id -> time-major batch, plus the env steps they came from (agent steps are their live rows)
    and the T x copies slots those took (env steps plus reset rows)."""

    def __init__(self, batches: dict[str, dict[str, np.ndarray]], env_steps: int, env_slots: int) -> None:
        super().__init__(batches)
        self.env_steps = env_steps
        self.env_slots = env_slots


class MultiAgentEnvRunner(EnvRunner):
    """Samples `num_envs` ParallelEnv copies; `sample()` returns a MultiAgentBatch.

    Its spec's `multi_agent` (the policy mapping) must be set: `make_env_runner` picks this class then.
    """

    def __init__(self, spec: EnvRunnerSpec, *, worker_index: int = 0) -> None:
        if spec.multi_agent is None:
            raise ValueError(f"env {spec.env.id!r} has no policy mapping (EnvRunnerSpec.multi_agent); "
                             "a gymnasium env is sampled by EnvRunner")
        self.spec = spec
        self.worker_index = worker_index
        self.num_envs = spec.num_envs
        self.env_spec = spec.env
        self.training_signals = None  # Atari's are single-agent (validated)
        self.envs = [make_parallel_env(self.env_spec.id, self.env_spec.env_config) for _ in range(self.num_envs)]
        self.mapping: PolicyMapping = spec.multi_agent.build(self.envs[0])
        self.env = ModuleSpaces(self.mapping.observation_spaces(), self.mapping.action_spaces())
        self.module = MultiRLModule({m: spec.module.build(*self.mapping.spaces[m]) for m in self.mapping.modules})
        self.module.eval()
        # Module -> its columns, (env copy, agent) pairs; and each pair's (module, column).
        self.columns = {m: [(c, a) for c in range(self.num_envs) for a in agents]
                        for m, agents in self.mapping.agents_of.items()}
        self._column_of = {pair: (m, j) for m, pairs in self.columns.items() for j, pair in enumerate(pairs)}
        # Central value (MAPPO): each copy's global state, which every column of that copy sees.
        self._central = self.mapping.state_space is not None
        self._env_has_state = self._central and has_state(self.envs[0], seed=self._seed_for(worker_index))
        self._column_copy = {m: np.array([c for c, _ in pairs], dtype=np.int64) for m, pairs in self.columns.items()}
        self._seed = self._seed_for(worker_index)
        self._generator = torch.Generator().manual_seed(self._seed)
        # Multi-agent runs do not normalise (validated); the disabled normaliser answers the group's queries.
        self.normalizer = Normalizer(spec.normalization, self._obs_space(self.mapping.modules[0]), self.num_envs)
        self._obs: dict[str, np.ndarray] | None = None
        self._memories: dict[str, Memory] = {}  # recurrent modules' memories, made with the episodes (`_reset`)
        self._finished: dict[str, Any] = _no_episodes()
        self.episode_hooks = EpisodeHooks(build_callbacks(spec.callbacks), self)

    def _reset(self, seed: int | None = None, update_normalization: bool = True) -> None:
        seed = self._seed if seed is None else seed
        self._obs = {m: np.zeros((len(cols), *self._obs_space(m).shape), dtype=buffer_dtype(self._obs_space(m)))
                     for m, cols in self.columns.items()}
        self._live = {m: np.zeros(len(cols), dtype=bool) for m, cols in self.columns.items()}
        self._resetting = np.zeros(self.num_envs, dtype=bool)
        self._agent_return = [defaultdict(float) for _ in range(self.num_envs)]
        self._episode_len = np.zeros(self.num_envs, dtype=np.int64)
        if self._central:
            state_space = self.mapping.state_space
            self._state = np.zeros((self.num_envs, *state_space.shape), dtype=state_space.dtype)
        self._new_memories()
        for c, env in enumerate(self.envs):
            obs, infos = env.reset(seed=seed + c)
            self._start_episode(c, obs, infos)

    def _new_memories(self) -> None:
        """Each recurrent module's memory of its columns, every one at an episode's start."""
        self._memories = {m: Memory(self.module[m], len(cols)) for m, cols in self.columns.items()
                          if self.module[m].is_stateful()}

    def _seed_for(self, worker_index: int) -> int:
        return self.spec.seed + WORKER_SEED_STRIDE * worker_index

    def _obs_space(self, module: str) -> gym.Space:
        """The module's own observation space (a central-value module's space also holds the state)."""
        space = self.mapping.spaces[module][0]
        return space["obs"] if self._central else space

    def _start_episode(self, copy: int, obs: dict[str, Any], infos: dict[str, Any]) -> None:
        for agent, o in obs.items():
            m, j = self._column_of[(copy, agent)]
            self._obs[m][j] = o
            self._live[m][j] = True
        self._agent_return[copy].clear()
        self._episode_len[copy] = 0
        self._update_state(copy)
        if self.episode_hooks.start:
            self.episode_hooks(self.episode_hooks.start, self._episode(copy, obs, infos))

    def _update_state(self, copy: int) -> None:
        """The copy's global state now: the env's `state()`, or its agents' observations side by side."""
        if not self._central:
            return
        if self._env_has_state:
            self._state[copy] = np.asarray(self.envs[copy].state(), dtype=np.float32).reshape(-1)
        else:
            self._state[copy] = np.concatenate([self._obs[m][j].reshape(-1) for m, j in
                                                (self._column_of[(copy, a)] for a in self.envs[copy].possible_agents)])

    @sampling_threads
    def sample(
        self, num_timesteps: int | None = None, explore: bool = True, *, update_normalization: bool = True,
        keep_raw: bool = False, training_signals: bool = True,
    ) -> MultiAgentBatch:
        """Step every copy `T` times; `T = ceil(num_timesteps / num_envs)` or the fragment length.

        `num_timesteps` counts env steps (one step of one copy, however many agents act in it). Multi-agent envs
        have no training-only signals (`training_signals` is the single-agent runner's, for `sample_episodes`).
        """
        if keep_raw:
            raise ValueError("recording episodes of a multi-agent env is not supported")
        if self._obs is None:
            self._reset()
        steps = -(-num_timesteps // self.num_envs) if num_timesteps else self.spec.rollout_fragment_length
        bufs = {m: self._buffers(m, steps) for m in self.columns}
        env_steps = 0
        for t in range(steps):
            actions: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            states_out = {m: self._act(m, buf, t, explore, actions) for m, buf in bufs.items()}
            started = np.zeros(self.num_envs, dtype=bool)
            for c, env in enumerate(self.envs):
                if self._resetting[c]:
                    self._resetting[c] = False
                    obs, infos = env.reset()
                    self._start_episode(c, obs, infos)
                    started[c] = True
                    continue
                env_steps += 1
                self._step_copy(c, env, actions[c], bufs, t)
            for m, memory in self._memories.items():
                memory.step(states_out[m], bufs[m][Columns.ACTIONS][t], bufs[m][Columns.REWARDS][t])
                # Fresh after a row an agent was not in play (its forward pass was a placeholder), for agents not in
                # play now, and for those of a copy that starts an episode: an agent joining later starts fresh.
                memory.reset(~bufs[m][Columns.LOSS_MASK][t] | ~self._live[m] | started[self._column_copy[m]])
        batches = {}
        for m, buf in bufs.items():
            buf[Columns.BOOTSTRAP_OBS] = self._obs[m].copy()
            if m in self._memories:
                buf.update({BOOTSTRAP_COLUMNS[column]: value.copy()
                            for column, value in self._memories[m].columns().items()})
            if self._central:
                buf[Columns.BOOTSTRAP_STATE] = self._state[self._column_copy[m]]
            batches[m] = buf
        return MultiAgentBatch(batches, env_steps, steps * self.num_envs)

    def _buffers(self, module: str, steps: int) -> dict[str, np.ndarray]:
        obs_space, act_space = self.mapping.spaces[module]
        if self._central:
            obs_space = obs_space["obs"]
        cols = len(self.columns[module])
        state_space = self.mapping.state_space
        state = ({Columns.STATE: np.empty((steps, cols, *state_space.shape), dtype=state_space.dtype)}
                 if self._central else {})
        memory = ({column: np.empty((steps, *value.shape), dtype=value.dtype)
                   for column, value in self._memories[module].columns().items()} if module in self._memories else {})
        return {
            **state,
            **memory,
            Columns.OBS: np.empty((steps, cols, *obs_space.shape), dtype=buffer_dtype(obs_space)),
            Columns.ACTIONS: np.empty((steps, cols, *act_space.shape), dtype=act_space.dtype),
            Columns.ACTION_LOGP: np.empty((steps, cols), dtype=np.float32),
            Columns.REWARDS: np.zeros((steps, cols), dtype=np.float32),
            Columns.TERMINATEDS: np.zeros((steps, cols), dtype=bool),
            Columns.TRUNCATEDS: np.zeros((steps, cols), dtype=bool),
            Columns.LOSS_MASK: np.empty((steps, cols), dtype=bool),
        }

    def _act(self, module: str, buf: dict[str, np.ndarray], t: int, explore: bool,
             actions: list[dict[str, Any]]) -> np.ndarray | None:
        """One batched forward pass over all of `module`'s columns; live agents' actions go to their copies.
        Returns a recurrent module's state after the step (None for a stateless one)."""
        rl_module = self.module[module]
        forward = rl_module.forward_exploration if explore else rl_module.forward_inference
        dist_cls = (rl_module.get_exploration_action_dist_cls() if explore
                    else rl_module.get_inference_action_dist_cls())
        obs = self._obs[module]
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs)
            check_legal(action_mask(self._obs_space(module), obs_t), self._live[module], self.mapping.spaces[module][1],
                        self.env_spec.id)
            inputs = {Columns.OBS: obs_t}
            memory = self._memories.get(module)
            if memory is not None:
                memory.feed(inputs, buf, t)
            out = forward(inputs)
            dist_inputs = out[Columns.ACTION_DIST_INPUTS]
            dist = dist_cls.from_logits(dist_inputs)
            sampled = dist.sample(self._generator) if explore else dist.deterministic_sample()
            logp = dist.logp(sampled)
        if Columns.ACTION_DIST_INPUTS not in buf:
            buf[Columns.ACTION_DIST_INPUTS] = np.empty((*buf[Columns.ACTION_LOGP].shape, dist_inputs.shape[-1]),
                                                       dtype=np.float32)
        buf[Columns.OBS][t] = obs
        if self._central:
            buf[Columns.STATE][t] = self._state[self._column_copy[module]]
        buf[Columns.ACTION_DIST_INPUTS][t] = dist_inputs.numpy()
        buf[Columns.ACTIONS][t] = sampled.numpy()
        buf[Columns.ACTION_LOGP][t] = logp.numpy()
        buf[Columns.LOSS_MASK][t] = self._live[module]
        act_space = self.mapping.spaces[module][1]
        for j in np.flatnonzero(self._live[module]):
            c, agent = self.columns[module][j]
            action = buf[Columns.ACTIONS][t, j]
            if isinstance(act_space, gym.spaces.Box):
                action = np.clip(action, act_space.low, act_space.high)
            actions[c][agent] = action
        return out[Columns.STATE_OUT].numpy() if memory is not None else None

    def _step_copy(self, c: int, env: Any, actions: dict[str, Any], bufs: dict[str, dict[str, np.ndarray]],
                   t: int) -> None:
        obs, rewards, terminated, truncated, infos = env.step(actions)
        self._episode_len[c] += 1
        column_of, returns = self._column_of, self._agent_return[c]
        for agent, reward in rewards.items():
            m, j = column_of[(c, agent)]
            bufs[m][Columns.REWARDS][t, j] = reward
            returns[agent] += float(reward)
        for agent, o in obs.items():
            m, j = column_of[(c, agent)]
            self._obs[m][j] = o
        for agent in actions:  # the flags are False unless set here (the buffers start as zeros)
            if terminated.get(agent) or truncated.get(agent):
                m, j = column_of[(c, agent)]
                bufs[m][Columns.TERMINATEDS][t, j] = bool(terminated.get(agent, False))
                bufs[m][Columns.TRUNCATEDS][t, j] = bool(truncated.get(agent, False))
        self._update_state(c)
        live_now = set(env.agents)
        for agent in env.possible_agents:
            m, j = column_of[(c, agent)]
            self._live[m][j] = agent in live_now
        hooks = self.episode_hooks
        if hooks.step:
            hooks(hooks.step, self._episode(c, obs, infos, actions, rewards))
        if not live_now:
            self._resetting[c] = True
            self._record_episode(c)
            if hooks.end:
                hooks(hooks.end, self._episode(c, obs, infos, actions, rewards))

    def _episode(self, c: int, obs: dict[str, Any], infos: dict[str, Any], actions: dict[str, Any] | None = None,
                 rewards: dict[str, Any] | None = None) -> Episode:
        """Copy `c`'s episode now, for the callbacks: per-agent dicts, the return summed over agents."""
        return Episode(env_index=c, length=int(self._episode_len[c]),
                       episode_return=sum(self._agent_return[c].values()), last_obs=obs, last_action=actions,
                       last_reward=rewards, worker_index=self.worker_index, _infos=lambda: infos)

    def _record_episode(self, c: int) -> None:
        returns = self._agent_return[c]
        self._finished["episode_returns"].append(sum(returns.values()))
        self._finished["episode_lens"].append(int(self._episode_len[c]))
        self._finished["episode_envs"].append(c)
        for agent, ret in returns.items():
            self._finished["agent_episode_returns"][agent].append(ret)
        for m, agents in self.mapping.agents_of.items():
            self._finished["module_episode_returns"][m].append(sum(returns.get(a, 0.0) for a in agents))

    def get_metrics(self) -> dict[str, Any]:
        """Episodes finished since the last call: the sum over agents (RLlib's episode return), per agent and
        per module, and what the callbacks logged (`CALLBACK_METRICS`), then forgets them."""
        metrics, self._finished = self._finished, _no_episodes()
        return {**metrics, CALLBACK_METRICS: self.episode_hooks.metrics_logger.pop()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        for module_id in self.mapping.modules:
            self.module[module_id].set_state(weights[module_id])

    def _capture_episodes(self) -> dict[str, Any] | None:
        envs = [env_state.capture(env) for env in self.envs]
        if any(env is None for env in envs):
            return None
        return {
            "envs": envs,
            "obs": {m: o.copy() for m, o in self._obs.items()},
            "live": {m: live.copy() for m, live in self._live.items()},
            "resetting": self._resetting.copy(),
            "agent_return": [dict(returns) for returns in self._agent_return],
            "episode_len": self._episode_len.copy(),
            **({"state": self._state.copy()} if self._central else {}),
            **({"memories": {m: memory.get_state() for m, memory in self._memories.items()}} if self._memories else {}),
        }

    def _restore_episodes(self, in_flight: dict[str, Any]) -> None:
        for env, snapshot in zip(self.envs, in_flight["envs"], strict=True):
            env_state.restore(env, snapshot)
        self._obs = {m: np.array(o, dtype=buffer_dtype(self._obs_space(m))) for m, o in in_flight["obs"].items()}
        self._live = {m: np.array(live, dtype=bool) for m, live in in_flight["live"].items()}
        self._resetting = np.array(in_flight["resetting"], dtype=bool)
        self._agent_return = [defaultdict(float, {a: float(r) for a, r in returns.items()})
                              for returns in in_flight["agent_return"]]
        self._episode_len = np.array(in_flight["episode_len"], dtype=np.int64)
        if self._central:
            self._state = np.array(in_flight["state"], dtype=self.mapping.state_space.dtype)
        self._new_memories()
        for m, memory in self._memories.items():
            memory.set_state(in_flight["memories"][m])

    def stop(self) -> None:
        for env in self.envs:
            env.close()


def _no_episodes() -> dict[str, Any]:
    return {"episode_returns": [], "episode_lens": [], "episode_envs": [],
            "agent_episode_returns": defaultdict(list), "module_episode_returns": defaultdict(list)}

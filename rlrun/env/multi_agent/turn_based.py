"""Turn-based PettingZoo games (AEC envs such as `pettingzoo.classic.tictactoe_v3`): one agent moves per step.

PettingZoo's `aec_to_parallel` needs an env that updates once per cycle of all agents, so it refuses a
board game, where each move changes what the next player sees. Here the AEC env is stepped as it is meant
to be, one mover at a time, and each agent's experience is its own trajectory:

- a row of an agent's column is one of ITS turns: the observation it moved from, its action, and every
  reward it received until its next turn (the loser's -1 arrives on the winner's move, and is credited
  to the loser's last move: PettingZoo's `last()` accumulates it for exactly that);
- the game's end closes every agent's trajectory with its final reward (terminated: no bootstrapping);
- so GAE (or V-trace) runs on each agent's own time axis, and the learners train the module batches
  unchanged: each module's batch keeps the `[T, B_module]` layout, one column per (env copy, agent),
  T rows of that agent's turns, with `loss_mask` 0 on the rows a column did not fill, placed at the top
  (the recursion runs backwards, so they never reach a real row) and on the row that carries a truncated
  game's final observation (the NEXT_STEP convention of the other runners).

A fragment gives every column at most T = ceil(steps / agents) turns: a copy stops when its mover's
column is full, so the env steps of a fragment stay close to `steps` per copy. A move whose outcome is
not known yet (the opponent has not replied) waits, with its observation, action and log-probability,
and completes in the next fragment; that waiting move is part of the checkpointed state, with the game.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlrun.core.columns import Columns
from rlrun.core.packed_space import as_model_input, pack_space
from rlrun.core.rl_module.action_masking import action_mask, check_legal
from rlrun.env import env_state
from rlrun.env.env_runner import buffer_dtype
from rlrun.env.multi_agent.env_runner import MultiAgentBatch, MultiAgentEnvRunner
from rlrun.env.runner_spec import EnvRunnerSpec, sampling_threads

# What a row of a column holds besides its observation (written when the agent moves).
_MOVE_COLUMNS = (Columns.ACTIONS, Columns.ACTION_LOGP, Columns.ACTION_DIST_INPUTS)


def is_turn_based(aec: Any) -> bool:
    """Whether an AEC env must be stepped one mover at a time: PettingZoo does not mark it `is_parallelizable`
    (every classic game), so `aec_to_parallel` refuses it."""
    return not aec.metadata.get("is_parallelizable", False)


class Turn(NamedTuple):
    """The agent selected now, its (packed) observation, the rewards since its last move, and whether it is out."""

    agent: str
    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool


class TurnBasedEnv:
    """An AEC env as the multi-agent runner sees it: its agents and their spaces (a Dict observation with an
    `action_mask` packed, `rlrun.core.packed_space`), and its game one turn at a time."""

    def __init__(self, aec: Any) -> None:
        self.aec = aec
        self.possible_agents = list(aec.possible_agents)
        self.metadata = aec.metadata
        self._spaces = {a: pack_space(aec.observation_space(a)) for a in self.possible_agents}

    @property
    def agents(self) -> list[str]:
        return self.aec.agents

    def observation_space(self, agent: str) -> gym.Space:
        return self._spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self.aec.action_space(agent)

    def reset(self, seed: int | None = None) -> None:
        self.aec.reset(seed=seed)

    def state(self) -> np.ndarray:
        """A turn-based game has no global state for a central value function (refused in the config)."""
        raise NotImplementedError

    def turn(self) -> Turn:
        agent = self.aec.agent_selection
        obs, reward, terminated, truncated, _ = self.aec.last()
        return Turn(agent, as_model_input(self._spaces[agent], obs), float(reward), bool(terminated), bool(truncated))

    def observations(self) -> dict[str, np.ndarray]:
        """Every agent's (packed) observation now, as the episode hooks get them."""
        return {agent: as_model_input(self._spaces[agent], self.aec.observe(agent)) for agent in self.aec.agents}

    def step(self, action: Any) -> None:
        """The selected agent's move; None takes an agent that is out off the board (PettingZoo's dead step)."""
        self.aec.step(action)

    def render(self) -> np.ndarray | None:
        return self.aec.render()

    def close(self) -> None:
        self.aec.close()


def greedy_move(module: Any, obs: np.ndarray) -> int:
    """The greedy (masked, if the observation carries a mask) move of `module` for one packed observation: what
    the win rate and the videos play."""
    with torch.inference_mode():
        logits = module.forward_inference({Columns.OBS: torch.from_numpy(obs[None])})[Columns.ACTION_DIST_INPUTS]
        return int(module.get_inference_action_dist_cls().from_logits(logits).deterministic_sample()[0])


def game_parts(env: TurnBasedEnv) -> Iterator[tuple[str, Any]]:
    """The objects that hold a game's state (`rlrun.env.env_state` walks them): the AEC env, every PettingZoo
    wrapper around it and the helper objects it keeps (tic-tac-toe's board, PettingZoo's agent selector)."""
    yield from _parts(env.aec, "aec/", type(env.aec.unwrapped).__module__.partition(".")[0])


def _parts(obj: Any, path: str, package: str) -> Iterator[tuple[str, Any]]:
    yield path, obj
    for name, value in vars(obj).items():
        module = type(value).__module__.partition(".")[0]
        if hasattr(value, "__dict__") and not callable(value) and module in ("pettingzoo", package) \
                and not isinstance(value, gym.Space):
            yield from _parts(value, f"{path}{name}/", package)


class TurnBasedEnvRunner(MultiAgentEnvRunner):
    """The multi-agent runner of a turn-based game: per step, one batched forward pass per module over the
    copies whose mover it serves; `sample()` returns each module's columns of its agents' own turns."""

    def __init__(self, spec: EnvRunnerSpec, *, worker_index: int = 0) -> None:
        super().__init__(spec, worker_index=worker_index)  # model.central_value is refused in the config
        self._num_agents = len(self.envs[0].possible_agents)

    def _reset(self, seed: int | None = None, update_normalization: bool = True) -> None:
        seed = self._seed if seed is None else seed
        self._obs = {m: np.zeros((len(cols), *self._obs_space(m).shape), dtype=buffer_dtype(self._obs_space(m)))
                     for m, cols in self.columns.items()}
        # (copy, agent) -> its move awaiting an outcome: observation, action, log-probability, logits.
        self._waiting: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self._mover: list[str] = [""] * self.num_envs
        self._agent_return = [defaultdict(float) for _ in range(self.num_envs)]
        self._episode_len = np.zeros(self.num_envs, dtype=np.int64)
        # Copy -> what the episode hooks see of its last move (observations, infos, action, rewards).
        self._last_move: dict[int, tuple[dict, dict, dict, dict]] = {}
        for c, env in enumerate(self.envs):
            env.reset(seed=seed + c)
            self._start_game(c)
            self._next_mover(c, rows=None)

    def _start_game(self, c: int) -> None:
        if self.episode_hooks.start:
            env = self.envs[c]
            self.episode_hooks(self.episode_hooks.start, self._episode(c, env.observations(), dict(env.aec.infos)))

    @sampling_threads
    def sample(
        self, num_timesteps: int | None = None, explore: bool = True, *, update_normalization: bool = True,
        keep_raw: bool = False, training_signals: bool = True,
    ) -> MultiAgentBatch:
        """Play every copy until its mover has T = ceil(steps / agents) turns in this fragment; `steps` as in
        MultiAgentEnvRunner (env steps are moves)."""
        if keep_raw:
            raise ValueError("recording episodes of a multi-agent env is not supported")
        if self._obs is None:
            self._reset()
        steps = -(-num_timesteps // self.num_envs) if num_timesteps else self.spec.rollout_fragment_length
        turns = math.ceil(steps / self._num_agents)
        rows: dict[str, list[list[dict[str, Any]]]] = {m: [[] for _ in cols] for m, cols in self.columns.items()}
        playing = set(range(self.num_envs))
        env_steps = 0
        while playing:
            playing = {c for c in playing if len(self._rows_of(rows, c, self._mover[c])) < turns}
            by_module: dict[str, list[int]] = defaultdict(list)
            for c in sorted(playing):
                by_module[self.mapping.agent_to_module[self._mover[c]]].append(c)
            for m, copies in by_module.items():
                for c, move in zip(copies, self._moves(m, copies, explore), strict=True):
                    self._waiting[(c, self._mover[c])] = move
                    action = self._env_action(m, move[Columns.ACTIONS])
                    self.envs[c].step(action)
                    self._episode_len[c] += 1
                    env_steps += 1
                    self._after_move(c, action)
                    self._next_mover(c, rows)
        batches = {m: self._layout(m, rows[m], turns) for m in self.columns}
        return MultiAgentBatch(batches, env_steps, env_steps)

    def _after_move(self, c: int, action: Any) -> None:
        """The step hooks; `episode_return` counts the rewards handed out so far (an agent gets its share when it
        is next selected, as PettingZoo's `last()` gives it)."""
        hooks = self.episode_hooks
        if not hooks.any:
            return
        env = self.envs[c]
        self._last_move[c] = (env.observations(), dict(env.aec.infos), {self._mover[c]: action},
                              dict(env.aec.rewards))
        if hooks.step:
            hooks(hooks.step, self._episode(c, *self._last_move[c]))

    def _rows_of(self, rows: dict[str, list[list[dict[str, Any]]]], c: int, agent: str) -> list[dict[str, Any]]:
        m, j = self._column_of[(c, agent)]
        return rows[m][j]

    def _moves(self, module: str, copies: list[int], explore: bool) -> list[dict[str, np.ndarray]]:
        """One batched forward pass over the movers of `copies`: each one's observation and move."""
        rl_module = self.module[module]
        forward = rl_module.forward_exploration if explore else rl_module.forward_inference
        dist_cls = (rl_module.get_exploration_action_dist_cls() if explore
                    else rl_module.get_inference_action_dist_cls())
        obs = np.stack([self._obs[module][self._column_of[(c, self._mover[c])][1]] for c in copies])
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs)
            check_legal(action_mask(self._obs_space(module), obs_t), np.ones(len(copies), dtype=bool),
                        self.mapping.spaces[module][1], self.env_spec.id)
            dist_inputs = forward({Columns.OBS: obs_t})[Columns.ACTION_DIST_INPUTS]
            dist = dist_cls.from_logits(dist_inputs)
            sampled = dist.sample(self._generator) if explore else dist.deterministic_sample()
            logp = dist.logp(sampled)
        return [{Columns.OBS: obs[i], Columns.ACTIONS: sampled[i].numpy(), Columns.ACTION_LOGP: logp[i].numpy(),
                 Columns.ACTION_DIST_INPUTS: dist_inputs[i].numpy()} for i in range(len(copies))]

    def _env_action(self, module: str, action: np.ndarray) -> Any:
        act_space = self.mapping.spaces[module][1]
        if isinstance(act_space, gym.spaces.Box):
            return np.clip(action, act_space.low, act_space.high)
        return int(action) if isinstance(act_space, gym.spaces.Discrete) else action

    def _next_mover(self, c: int, rows: dict[str, list[list[dict[str, Any]]]] | None) -> None:
        """Advance copy `c` to its next decision: each agent selected on the way completes its waiting move
        (rewards since, terminated/truncated, the observation it led to); agents that are out take their dead
        step; a finished game is recorded once and the copy resets."""
        env = self.envs[c]
        while True:
            if not env.agents:
                self._record_episode(c)
                if self.episode_hooks.end:
                    self.episode_hooks(self.episode_hooks.end, self._episode(c, *self._last_move.get(c, ({}, {}))))
                self._agent_return[c].clear()
                self._episode_len[c] = 0
                env.reset()
                self._start_game(c)
                continue
            turn = env.turn()
            m, j = self._column_of[(c, turn.agent)]
            self._obs[m][j] = turn.obs
            self._agent_return[c][turn.agent] += turn.reward
            move = self._waiting.pop((c, turn.agent), None)
            if move is not None and rows is not None:
                self._complete(rows[m][j], move, turn)
            if not (turn.terminated or turn.truncated):
                self._mover[c] = turn.agent
                return
            env.step(None)

    def _complete(self, column: list[dict[str, Any]], move: dict[str, np.ndarray], turn: Turn) -> None:
        """A row for the agent's waiting move. A truncated game's final observation goes into a masked row
        after it (its value is the bootstrap), unless the row is the column's last, when BOOTSTRAP_OBS holds it."""
        column.append({**move, Columns.REWARDS: turn.reward, Columns.TERMINATEDS: turn.terminated,
                       Columns.TRUNCATEDS: turn.truncated and not turn.terminated, Columns.LOSS_MASK: True,
                       Columns.BOOTSTRAP_OBS: turn.obs})
        if turn.truncated and not turn.terminated:
            column.append({**move, Columns.OBS: turn.obs, Columns.REWARDS: 0.0, Columns.TERMINATEDS: False,
                           Columns.TRUNCATEDS: False, Columns.LOSS_MASK: False, Columns.BOOTSTRAP_OBS: turn.obs})

    def _layout(self, module: str, columns: list[list[dict[str, Any]]], turns: int) -> dict[str, np.ndarray]:
        """`[T, B_module]` time-major columns, each column's rows at the bottom and masked padding above."""
        buf = self._buffers(module, turns)
        logits = next((row[Columns.ACTION_DIST_INPUTS] for col in columns for row in col), None)
        if logits is not None:
            buf[Columns.ACTION_DIST_INPUTS] = np.zeros((turns, len(columns), *np.shape(logits)), dtype=np.float32)
        buf[Columns.LOSS_MASK][:] = False
        buf[Columns.OBS][:] = self._obs[module]  # padding of a column without a move yet: its observation now
        buf[Columns.ACTIONS][:] = 0
        buf[Columns.ACTION_LOGP][:] = 0.0
        bootstrap = self._obs[module].copy()
        for j, rows in enumerate(columns):
            # A truncated game's extra row cannot overflow: the last real row then needs none (see _complete).
            rows = rows[:turns]
            for t, row in enumerate(rows, start=turns - len(rows)):
                for key in (Columns.OBS, *_MOVE_COLUMNS, Columns.REWARDS, Columns.TERMINATEDS, Columns.TRUNCATEDS,
                            Columns.LOSS_MASK):
                    buf[key][t, j] = row[key]
            if rows:
                bootstrap[j] = rows[-1][Columns.BOOTSTRAP_OBS]
                # Padding repeats the column's first move, so its action is legal where a mask applies: a loss that
                # weighs every row before masking never multiplies a masked logit's log-probability.
                for key in (Columns.OBS, *_MOVE_COLUMNS):
                    buf[key][:turns - len(rows), j] = rows[0][key]
        buf[Columns.BOOTSTRAP_OBS] = bootstrap
        return buf

    def _capture_episodes(self) -> dict[str, Any] | None:
        games = [env_state.capture(env, game_parts) for env in self.envs]
        if any(game is None for game in games):
            return None
        return {
            "games": games,
            "obs": {m: o.copy() for m, o in self._obs.items()},
            "waiting": [{"copy": c, "agent": a, **{k: np.array(v) for k, v in move.items()}}
                        for (c, a), move in self._waiting.items()],
            "mover": list(self._mover),
            "agent_return": [dict(returns) for returns in self._agent_return],
            "episode_len": self._episode_len.copy(),
        }

    def _restore_episodes(self, in_flight: dict[str, Any]) -> None:
        for env, game in zip(self.envs, in_flight["games"], strict=True):
            env_state.restore(env, game, game_parts)
        self._obs = {m: np.array(o, dtype=buffer_dtype(self._obs_space(m))) for m, o in in_flight["obs"].items()}
        self._waiting = {(int(w["copy"]), str(w["agent"])): {k: np.array(w[k]) for k in (Columns.OBS, *_MOVE_COLUMNS)}
                         for w in in_flight["waiting"]}
        self._mover = [str(a) for a in in_flight["mover"]]
        self._agent_return = [defaultdict(float, {a: float(r) for a, r in returns.items()})
                              for returns in in_flight["agent_return"]]
        self._episode_len = np.array(in_flight["episode_len"], dtype=np.int64)

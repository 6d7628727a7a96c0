"""WinRate: how a self-play policy of a two-player turn-based game fares against a uniformly random player.

Self-play's own returns say nothing about strength (a shared policy wins every game it loses: the return
summed over both seats is 0), so a game preset measures the policy against a fixed opponent, as PettingZoo's
and RLlib's self-play examples do: the trained policy plays greedily (through its module, so an action mask
applies), the opponent picks uniformly among the legal moves, and the policy takes each seat in half the
games, since moving first is an advantage. Runs with every evaluation (`evaluation.every_iterations`, and
the run's last iteration), beside the greedy self-play episodes, as `evaluation/win_rate`, `draw_rate`,
`loss_rate` and `illegal_moves` (moves the policy chose that the game's mask forbade; with masking, 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlrun.callbacks.callback import Callback
from rlrun.config.errors import ConfigError
from rlrun.core.packed_space import PackedSpace
from rlrun.core.rl_module import RLModule
from rlrun.env.multi_agent.turn_based import TurnBasedEnv, TurnBasedEnvRunner, greedy_move

# Games are seeded apart from training's episodes (which start at the run's seed).
GAMES_SEED_OFFSET = 7_919


class WinRate(Callback):
    """`games` games against a uniformly random legal player at every evaluation (subclass it for another count)."""

    games = 200

    def __init__(self) -> None:
        self._runner: TurnBasedEnvRunner | None = None

    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        from rlrun.env.env_runner_group import make_env_runner

        spec = algorithm.config.env_runner_spec()
        runner = make_env_runner(spec.replace(num_envs=1, callbacks=())) if spec.multi_agent is not None else None
        if not isinstance(runner, TurnBasedEnvRunner) or len(runner.envs[0].possible_agents) != 2:
            if runner is not None:
                runner.stop()
            raise ConfigError(f"callbacks: WinRate plays two-player turn-based games (PettingZoo AEC games such as "
                              f"pettingzoo.classic.tictactoe_v3); env '{spec.env.id}' is not one")
        self._runner = runner

    def on_evaluate_end(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        runner = self._runner
        runner.set_weights(algorithm.learner_group.get_weights())
        modules = {a: runner.module[m] for a, m in runner.mapping.agent_to_module.items()}
        result["evaluation"].update(play_against_random(runner.envs[0], modules, self.games,
                                                        seed=algorithm.config.seed + GAMES_SEED_OFFSET))

    def on_run_end(self, **kwargs: Any) -> None:
        if self._runner is not None:
            self._runner.stop()


def play_against_random(env: TurnBasedEnv, modules: dict[str, RLModule], games: int, seed: int) -> dict[str, float]:
    """`games` games of the greedy policy (`modules`: the module of each seat) against a uniformly random legal
    player; the policy takes the first seat in even games and the second in odd ones."""
    rng = np.random.default_rng(seed)
    outcomes, illegal = [], 0
    for game in range(games):
        env.reset(seed=seed + game)
        seat = env.possible_agents[game % 2]
        score = 0.0
        while env.agents:
            turn = env.turn()
            if turn.agent == seat:
                score += turn.reward
            if turn.terminated or turn.truncated:
                env.step(None)
                continue
            legal = legal_actions(env, turn)
            if turn.agent == seat:
                action = greedy_move(modules[seat], turn.obs)
                illegal += int(action not in legal)
            else:
                action = int(rng.choice(legal))
            env.step(action)
        outcomes.append(np.sign(score))
    outcomes = np.asarray(outcomes)
    return {"win_rate": float(np.mean(outcomes > 0)), "draw_rate": float(np.mean(outcomes == 0)),
            "loss_rate": float(np.mean(outcomes < 0)), "illegal_moves": float(illegal)}


def legal_actions(env: TurnBasedEnv, turn: Any) -> np.ndarray:
    """The mover's legal actions: its observation's action mask, or every action of its space."""
    space = env.observation_space(turn.agent)
    mask = space.action_mask(turn.obs[None]) if isinstance(space, PackedSpace) else None
    if mask is None:
        return np.arange(int(env.action_space(turn.agent).n))
    return np.flatnonzero(mask[0].numpy())

"""Turn-based PettingZoo games (rlrun.env.multi_agent.turn_based): each agent's column holds its own turns, the
rewards between its turns go to its last move, each game is one episode, and a checkpoint resumes mid-game."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import pythonpath_with_tests
from test_reproducibility import assert_resumes_exactly
from turn_based_envs import CountingGame

from rlrun.algorithms.ppo import PPOConfig
from rlrun.callbacks import runner_metrics
from rlrun.callbacks.win_rate import WinRate, play_against_random
from rlrun.config.errors import ConfigError
from rlrun.core import Columns
from rlrun.core.rl_module.catalog import Catalog, ModelError
from rlrun.env.env_runner_group import make_env_runner
from rlrun.env.multi_agent.creation import is_multi_agent_env, make_parallel_env
from rlrun.env.multi_agent.turn_based import TurnBasedEnv, TurnBasedEnvRunner
from rlrun.run.recorder import read_metrics

COUNTING = "turn_based_envs:CountingGame"
TARGET = 7


@pytest.fixture(autouse=True)
def _tests_importable(monkeypatch):
    """`turn_based_envs` (this folder) for this process and the rlrun subprocesses."""
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())


def counting(max_moves: int = 100, policies: str = "shared", num_envs: int = 3, batch: int = 48) -> PPOConfig:
    return (
        PPOConfig()
        .environment(COUNTING, env_config={"target": TARGET, "max_moves": max_moves})
        .env_runners(num_envs_per_env_runner=num_envs)
        .training(train_batch_size=batch, minibatch_size=16, num_epochs=2)
        .multi_agent(policies=policies)
        .debugging(seed=1)
    )


def count(obs: np.ndarray) -> np.ndarray:
    """The shared count an observation shows."""
    return np.rint(obs[..., 0] * TARGET).astype(int)


def test_turn_based_games_are_found_by_module_or_class():
    assert is_multi_agent_env("pettingzoo.classic.tictactoe_v3")  # PettingZoo's layout: env() beside raw_env
    assert isinstance(make_parallel_env("pettingzoo.classic.tictactoe_v3"), TurnBasedEnv)
    assert isinstance(make_parallel_env(COUNTING), TurnBasedEnv)
    runner = make_env_runner(counting().env_runner_spec())
    assert isinstance(runner, TurnBasedEnvRunner)


def test_rows_are_each_agents_own_turns_with_the_rewards_credited_to_its_last_move():
    runner = make_env_runner(counting(num_envs=4).env_runner_spec())
    batch = runner.sample()
    rows = batch["default_policy"]
    metrics = runner.get_metrics()
    mask, obs, actions = rows[Columns.LOSS_MASK], rows[Columns.OBS], rows[Columns.ACTIONS]
    rewards, terminated = rows[Columns.REWARDS], rows[Columns.TERMINATEDS]
    steps, columns = mask.shape
    assert (steps, columns) == (48 // 4 // 2, 4 * 2)  # T = fragment length / agents; a column per (copy, agent)
    assert not rows[Columns.TRUNCATEDS].any()
    for j, (_, agent) in enumerate(runner.columns["default_policy"]):
        real = np.flatnonzero(mask[:, j])
        # Padding sits above a column's turns; the turns themselves are consecutive rows.
        assert list(real) == list(range(steps - len(real), steps))
        # ... and repeats the column's first move (a legal action where a mask applies).
        assert np.all(actions[:steps - len(real), j] == actions[real[0], j])
        assert np.all(obs[real, j, 1] == float(agent == "first"))
        after_move = count(obs[real, j]) + actions[real, j] + 1
        won = after_move >= TARGET
        # The winner's move ends the game (+1); the loser's last move did not, yet its row holds the -1 that
        # arrived on the opponent's move; every other move earns 0.
        np.testing.assert_array_equal(rewards[real, j], np.where(won, 1.0, np.where(terminated[real, j], -1.0, 0.0)))
        assert np.all(terminated[real, j][won])
        # Within a game, an agent's next turn sees its own move and one reply (1 or 2) added to the count.
        within = ~terminated[real[:-1], j]
        gap = count(obs[real[1:], j]) - after_move[:-1]
        assert np.all(np.isin(gap[within], [1, 2]))
        # After a game, the next row starts a new one: the first player from 0, the second from 1 or 2.
        assert np.all(np.isin(count(obs[real[1:], j])[~within], [0] if agent == "first" else [1, 2]))
    # Each game is one episode: one winner row and one loser row per finished game, agent returns +1 / -1.
    assert len(metrics["episode_returns"]) == int((terminated & (rewards == 1)).sum())
    assert len(metrics["episode_returns"]) == int((terminated & (rewards == -1)).sum()) > 0
    assert metrics["episode_returns"] == [0.0] * len(metrics["episode_returns"])
    assert sorted(zip(metrics["agent_episode_returns"]["first"], metrics["agent_episode_returns"]["second"],
                      strict=True)) == sorted((r, -r) for r in metrics["agent_episode_returns"]["first"])
    assert sum(metrics["episode_lens"]) <= batch.env_steps


def test_a_column_bootstraps_from_its_own_next_turn():
    runner = make_env_runner(counting(num_envs=2).env_runner_spec())
    rows = runner.sample()["default_policy"]
    for j, (_, agent) in enumerate(runner.columns["default_policy"]):
        if rows[Columns.TERMINATEDS][-1, j]:
            continue
        # The obs after the column's last turn is that agent's view now (its next turn), never the opponent's.
        np.testing.assert_array_equal(rows[Columns.BOOTSTRAP_OBS][j], runner._obs["default_policy"][j])
        assert rows[Columns.BOOTSTRAP_OBS][j, 1] == float(agent == "first")
        assert count(rows[Columns.BOOTSTRAP_OBS][j]) > count(rows[Columns.OBS][-1, j]) + rows[Columns.ACTIONS][-1, j]


def test_a_truncated_game_keeps_its_final_observation_for_the_bootstrap():
    """max_moves 3: every game is cut after three moves; the truncated move's next row (masked) or the column's
    bootstrap obs holds the count it led to, so its value is V(final obs)."""
    runner = make_env_runner(counting(max_moves=3, num_envs=2).env_runner_spec())
    rows = runner.sample()["default_policy"]
    mask, truncated, obs = rows[Columns.LOSS_MASK], rows[Columns.TRUNCATEDS], rows[Columns.OBS]
    assert truncated.any() and not rows[Columns.TERMINATEDS].any()
    for t, j in zip(*np.nonzero(truncated), strict=True):
        final = obs[t + 1, j] if t + 1 < len(mask) else rows[Columns.BOOTSTRAP_OBS][j]
        assert t + 1 == len(mask) or not mask[t + 1, j]
        assert count(final) > count(obs[t, j]) + rows[Columns.ACTIONS][t, j]  # the opponent replied after it
        assert rows[Columns.REWARDS][t, j] == 0.0
    assert set(runner.get_metrics()["episode_lens"]) == {3}


def test_resume_mid_game_continues_exactly():
    config = counting(num_envs=2, batch=12)
    config.env_config = {"target": 40, "max_moves": 100}  # games span several fragments
    first = make_env_runner(config.env_runner_spec())
    first.sample()
    state = first.get_state()
    assert state["episodes_in_flight"]["waiting"]  # a move awaiting the opponent's reply is saved with the game
    second = make_env_runner(config.env_runner_spec())
    second.set_weights({"default_policy": first.module["default_policy"].get_state()})
    second.set_state(state)
    a, b = first.sample(), second.sample()
    assert a.env_steps == b.env_steps
    for key, value in a["default_policy"].items():
        np.testing.assert_array_equal(value, b["default_policy"][key], err_msg=key)
    assert first.get_metrics()["episode_lens"] == second.get_metrics()["episode_lens"]


def test_a_tictactoe_run_resumes_exactly_mid_game_from_a_checkpoint(tmp_path: Path):
    """Through the checkpoint files: two iterations, save, two more equal an uninterrupted run's four."""
    def tictactoe() -> PPOConfig:
        return (PPOConfig().environment("pettingzoo.classic.tictactoe_v3").env_runners(num_envs_per_env_runner=3)
                .training(train_batch_size=60, minibatch_size=30, num_epochs=1).multi_agent(policies="shared")
                .debugging(seed=2))

    assert_resumes_exactly(tictactoe, tmp_path / "checkpoint")


def test_tictactoe_state_resumes_mid_game():
    """PettingZoo's own game objects (board, agent selector, wrappers) are captured as plain data."""
    config = (PPOConfig().environment("pettingzoo.classic.tictactoe_v3").env_runners(num_envs_per_env_runner=1)
              .training(train_batch_size=4).multi_agent(policies="shared")
              .rl_module(model_config={"conv_filters": [[16, 3, 1]]}))
    first = make_env_runner(config.env_runner_spec())
    first.sample()
    second = make_env_runner(config.env_runner_spec())
    second.set_weights({"default_policy": first.module["default_policy"].get_state()})
    second.set_state(first.get_state())
    assert second.envs[0].aec.unwrapped.board.squares == first.envs[0].aec.unwrapped.board.squares
    a, b = first.sample(), second.sample()
    np.testing.assert_array_equal(a["default_policy"][Columns.ACTIONS], b["default_policy"][Columns.ACTIONS])


def test_game_counts_reward_once_per_game():
    """The env itself: PettingZoo's last() hands each reward to its agent once (the runner's returns rely on it)."""
    env = TurnBasedEnv(CountingGame(target=TARGET))
    env.reset()
    seen = {"first": 0.0, "second": 0.0}
    while env.agents:
        turn = env.turn()
        seen[turn.agent] += turn.reward
        env.step(None if turn.terminated or turn.truncated else 1)
    assert seen == {"first": -1.0, "second": 1.0}  # 2, 4, 6, 8: the second player's move reaches 7


def test_episode_hooks_see_each_game_once_and_every_move():
    config = counting(num_envs=2).callbacks(["turn_based_envs:GameHooks"])
    runner = make_env_runner(config.env_runner_spec())
    batch = runner.sample()
    metrics = runner.get_metrics()
    logged = runner_metrics(metrics)
    games = len(metrics["episode_returns"])
    assert logged["moves"] == batch.env_steps
    assert logged["ends"] == games > 0
    assert logged["starts"] == games + 2  # the games that finished and the two under way, one per copy
    assert logged["first_won"] == metrics["agent_episode_returns"]["first"].count(1.0)


def test_win_rate_counts_each_seat_half_of_the_games():
    """Target 1: whoever moves first wins, so a policy playing the first seat in half the games wins exactly half."""
    runner = make_env_runner(counting().env_runner_spec())
    env = TurnBasedEnv(CountingGame(target=1))
    modules = dict.fromkeys(env.possible_agents, runner.module["default_policy"])
    assert play_against_random(env, modules, games=10, seed=0) == {
        "win_rate": 0.5, "draw_rate": 0.0, "loss_rate": 0.5, "illegal_moves": 0.0}


def test_a_central_value_function_is_refused_for_a_turn_based_game():
    with pytest.raises(ConfigError, match="model.central_value is for simultaneous-move envs; .* turn-based game"):
        counting().rl_module(model_config={"central_value": True}).validate()


def test_win_rate_refuses_an_env_that_is_not_a_two_player_game():
    config = PPOConfig().environment("CartPole-v1").callbacks(["rlrun.callbacks.win_rate:WinRate"])
    algo = config.build_algo()
    try:
        with pytest.raises(ConfigError, match="WinRate plays two-player turn-based games"):
            WinRate().on_algorithm_init(algorithm=algo)
    finally:
        algo.stop()


def test_cli_trains_the_tictactoe_preset_reports_its_win_rate_and_evaluates(run_cli, tmp_path: Path):
    """The preset, tiny: self-play with the mask, WinRate at the final evaluation, then rlrun-eval films games."""
    result = run_cli("experiment=tictactoe_ppo", "stop.timesteps=600", "env_runners.num_envs_per_runner=4",
                     "algo.train_batch_size=300", "algo.minibatch_size=100", "algo.num_epochs=1",
                     "evaluation.episodes=2")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    rows = read_metrics(run_dir)
    last = rows[-1]
    assert last["evaluation/win_rate"] + last["evaluation/draw_rate"] + last["evaluation/loss_rate"] == 1.0
    assert last["evaluation/illegal_moves"] == 0.0  # the mask reaches the greedy policy's logits
    assert "evaluation/win_rate" not in rows[0]  # evaluated only at the end here (every_iterations=10)
    # One policy for both seats; each seat's return is the negation of the other's (zero-sum, one per game).
    players = (last["env_runners/agent_episode_return_mean/player_1"],
               last["env_runners/agent_episode_return_mean/player_2"])
    assert players[0] == pytest.approx(-players[1]) and last["env_runners/episode_return_mean"] == 0.0
    assert sorted(p.name for p in (run_dir / "checkpoints" / "final" / "learner_group").glob("module_*")) == [
        "module_default_policy.safetensors"]
    evaluate = subprocess.run([str(Path(sys.executable).with_name("rlrun-eval")), f"checkpoint={run_dir}",
                               "episodes=2", "video=true", "video_format=gif"], capture_output=True, text=True,
                              timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    report = json.loads(next(run_dir.glob("eval_*.json")).read_text())
    assert min(report["episode_lens"]) >= 5 and max(report["episode_lens"]) <= 9  # whole games of legal moves
    assert Path(report["video"]).stat().st_size > 0  # filmed move by move


def test_ray_env_runners_play_turn_based_games(ray_cluster):
    """A remote runner (a SamplingTurnBasedEnvRunner actor) returns each agent's turns and its games' metrics."""
    config = counting(num_envs=2, batch=24).env_runners(num_env_runners=1)
    algo = config.build_algo()
    try:
        batch, env_steps = algo.env_runner_group.sample()
        metrics = algo.env_runner_group.get_metrics()
    finally:
        algo.stop()
    rows = batch["default_policy"]
    # 24 env steps over 2 copies: 12 per copy, 6 turns per agent; a column per copy and agent.
    assert rows[Columns.OBS].shape[:2] == (6, 2 * 2)
    assert env_steps == batch.env_steps > 0
    finished = len(metrics["episode_returns"])
    assert int((rows[Columns.TERMINATEDS] & (rows[Columns.REWARDS] == -1)).sum()) == finished > 0


def test_a_board_smaller_than_the_small_cnn_gets_one_convolution_over_it_by_default():
    """tic-tac-toe's 3x3x2 board (what `rlrun env=tictactoe` trains on with the default model)."""
    board = gym.spaces.Box(0, 1, (3, 3, 2), np.int8)
    kind, filters, features = Catalog(board, {}).conv_layout()
    assert (kind, [tuple(f) for f in filters], features) == ("conv_filters", [(64, (3, 3), 1)], 64)
    encoder = Catalog(board, {}).build_encoder()
    assert encoder(torch.zeros(5, 3, 3, 2, dtype=torch.int8)).shape == (5, 64)
    with pytest.raises(ModelError, match="model.cnn=small does not fit 3x3 images"):
        Catalog(board, {"cnn": "small"}).conv_layout()  # a CNN the user names is theirs

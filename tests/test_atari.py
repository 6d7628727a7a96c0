"""Atari (issue 25): preprocessing, and the training-only signals of lives and reward clipping.

The env plays whole games; the env runner marks a lost life terminal in the batch (the game goes on) and clips
the batch's rewards, while the episodes it reports are the games' own, unclipped scores. `GameLog`, a real
gymnasium wrapper given through `env.wrappers` as a user would, records what each game did, so the batch and
the reported episodes are checked against the game itself. The learners' side -- no bootstrap across a
terminal row that a live row of the same game follows -- is checked on GAE, V-trace and n-step replay.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import RLRUN

from rlrun.algorithms.ppo.ppo import PPOConfig
from rlrun.config.schema import AtariSchema
from rlrun.core.columns import Columns
from rlrun.data.advantages import compute_gae
from rlrun.data.replay_buffers.replay_buffer import ReplayBuffer
from rlrun.data.vtrace import vtrace
from rlrun.env.env_creation import env_spaces
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_spec import AtariSpec, EnvSpec

pytestmark = pytest.mark.xdist_group("atari")

STEPS = 450  # per env copy, in each of the two batches below
MAX_STEPS = 400  # MsPacman's first life goes after ~330 steps of random play, a whole game after ~600
# A tiny CNN: the default Nature CNN costs ~30 ms a step on a busy 2-core machine, this one under 1 ms.
TINY_CNN = [[8, 8, 8], [8, 4, 4]]


class GameLog(gym.Wrapper):
    """Records each reset (with the lives the game starts with) and each step of the game it wraps."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.events: list[tuple[Any, ...]] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.events.append(("reset", int(info["lives"])))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.events.append(("step", float(reward), int(info["lives"]), bool(terminated), bool(truncated)))
        return obs, reward, terminated, truncated, info


@pytest.fixture(scope="module")
def mspacman() -> dict[str, Any]:
    """Two batches of MsPacman (rewards of 10 and more, 3 lives) on 2 copies: one for training, one with the
    training signals off (as evaluation samples), and what the games did meanwhile."""
    config = (PPOConfig().environment("ALE/MsPacman-v5", max_episode_steps=MAX_STEPS, atari=True,
                                      wrappers=["test_atari:GameLog"])
              .env_runners(num_envs_per_env_runner=2).rl_module(model_config={"conv_filters": TINY_CNN})
              .debugging(seed=0))
    runner = EnvRunner(config.env_runner_spec())
    try:
        train = runner.sample(num_timesteps=2 * STEPS)
        train_metrics = runner.get_metrics()
        logs = [env.events for env in runner.env.envs]
        split = [len(log) for log in logs]
        played = runner.sample(num_timesteps=2 * STEPS, training_signals=False)
        played_metrics = runner.get_metrics()
    finally:
        runner.stop()
    return {"runner": runner, "train": train, "train_metrics": train_metrics, "played": played,
            "played_metrics": played_metrics, "logs": logs, "train_logs": [log[:n] for log, n in zip(logs, split)],
            "played_logs": [log[n - 1:] for log, n in zip(logs, split)]}


def _rows(batch: dict[str, np.ndarray], log: list[tuple[Any, ...]], env: int) -> list[dict[str, Any]]:
    """Row by row of one column: what the batch holds beside what the game did then (`log` starts with the event
    before the batch's first row). A row with loss_mask 0 is the game's reset, any other one of its steps."""
    rows = []
    lives = None
    for t, event in enumerate(log):
        if t > 0:
            mask = bool(batch[Columns.LOSS_MASK][t - 1, env])
            assert mask == (event[0] == "step"), (t, event)
            row = {"reward": float(batch[Columns.REWARDS][t - 1, env]),
                   "terminated": bool(batch[Columns.TERMINATEDS][t - 1, env]), "event": event,
                   "lost_life": event[0] == "step" and event[2] < lives}
            rows.append(row)
        lives = event[1] if event[0] == "reset" else event[2]
    return rows


def _episodes(log: list[tuple[Any, ...]]) -> list[tuple[float, int]]:
    """(return, length) of the games the log saw end, in order."""
    finished, ret, length = [], 0.0, 0
    for event in log:
        if event[0] == "reset":
            ret, length = 0.0, 0
            continue
        ret, length = ret + event[1], length + 1
        if event[3] or event[4]:
            finished.append((ret, length))
    return finished


def test_atari_spec_defaults_are_the_schemas():
    """env code reads AtariSpec, the config AtariSchema: the same keys with the same defaults."""
    assert dataclasses.asdict(AtariSpec()) == dataclasses.asdict(AtariSchema())


def test_observations_are_uint8_frame_stacks_end_to_end(mspacman):
    runner, batch = mspacman["runner"], mspacman["train"]
    assert runner.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert runner.action_space == gym.spaces.Discrete(9)
    assert batch[Columns.OBS].dtype == np.uint8 and batch[Columns.OBS].shape == (STEPS, 2, 4, 84, 84)
    assert batch[Columns.BOOTSTRAP_OBS].dtype == np.uint8 and batch[Columns.BOOTSTRAP_OBS].shape == (2, 4, 84, 84)
    # The stack holds the newest frame last: the next row's stack is this one's shifted by a frame.
    obs = batch[Columns.OBS]
    live = batch[Columns.LOSS_MASK][1:] & batch[Columns.LOSS_MASK][:-1]
    t, j = np.nonzero(live)
    assert len(t) > 0 and np.array_equal(obs[t + 1, j, :3], obs[t, j, 1:])
    assert obs.max() > 0


def test_colour_frames_stack_channels_first():
    obs_space, _ = env_spaces(EnvSpec("ALE/Breakout-v5", atari=AtariSpec(grayscale=False, frame_stack=2,
                                                                         screen_size=64)))
    assert obs_space == gym.spaces.Box(0, 255, (6, 64, 64), np.uint8)


def test_training_rewards_are_clipped_and_reported_returns_are_the_score(mspacman):
    batch, metrics = mspacman["train"], mspacman["train_metrics"]
    scored = 0
    for env, log in enumerate(mspacman["train_logs"]):
        for row in _rows(batch, log, env):
            if row["event"][0] == "step":
                assert row["reward"] == np.sign(row["event"][1]), row
                scored += row["event"][1] > 1
        reported = [(r, n) for r, n, e in zip(metrics["episode_returns"], metrics["episode_lens"],
                                                metrics["episode_envs"]) if e == env]
        assert reported == _episodes(log)
    assert scored > 0, "MsPacman scores 10 and more per pellet: some rewards were clipped"
    assert len(metrics["episode_returns"]) >= 1 and max(metrics["episode_returns"]) > 10


def test_a_lost_life_is_terminal_in_the_batch_and_the_game_goes_on(mspacman):
    batch = mspacman["train"]
    losses = 0
    for env, log in enumerate(mspacman["train_logs"]):
        rows = _rows(batch, log, env)
        for t, row in enumerate(rows):
            if row["event"][0] != "step":
                assert not row["terminated"]
                continue
            game_over = row["event"][3]
            assert row["terminated"] == (row["lost_life"] or game_over), (t, row)
            if row["lost_life"] and not (game_over or row["event"][4]) and t + 1 < len(rows):
                losses += 1
                assert rows[t + 1]["event"][0] == "step", "a lost life reset the game"
                assert batch[Columns.LOSS_MASK][t + 1, env]
    assert losses >= 1


def test_with_the_training_signals_off_the_batch_is_the_game_as_played(mspacman):
    """What evaluation and recording sample: raw rewards, terminal only where the game ends."""
    batch = mspacman["played"]
    losses = 0
    for env, log in enumerate(mspacman["played_logs"]):
        for row in _rows(batch, log, env):
            if row["event"][0] == "step":
                assert row["reward"] == row["event"][1] and row["terminated"] == row["event"][3], row
                losses += row["lost_life"]
        # Games are whole across batches: one that began in the first batch is reported with all its steps.
        reported = [[(r, n) for r, n, e in zip(metrics["episode_returns"], metrics["episode_lens"],
                                                 metrics["episode_envs"]) if e == env]
                    for metrics in (mspacman["train_metrics"], mspacman["played_metrics"])]
        assert reported[0] + reported[1] == _episodes(mspacman["logs"][env])
        assert reported[1], "no game ended in the second batch"
    assert losses >= 1


def test_episodes_in_flight_keep_their_lives(mspacman):
    """A checkpoint's episodes in flight would carry the lives (the ALE itself is not plain data, so a resumed
    Atari run starts fresh games: the state says so by leaving them out)."""
    state = mspacman["runner"].get_state()
    assert state["sampling"] and "episodes_in_flight" not in state


# -- the learners: no bootstrap across a lost life ------------------------------------------------

# One column: a life is lost at step 1 (terminated), and step 2 is the next step of the same game (loss_mask 1).
REWARDS = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
TERMINATEDS = np.array([[False], [True], [False], [False]])
VALUES = np.array([[10.0], [20.0], [30.0], [40.0]], dtype=np.float32)


def _after_the_loss_changed(array: np.ndarray) -> np.ndarray:
    changed = array.copy()
    changed[2:] += 100.0
    return changed


def test_gae_does_not_bootstrap_across_a_lost_life():
    gamma, lam = 0.9, 0.95

    def gae(rewards: np.ndarray, values: np.ndarray) -> np.ndarray:
        next_values = np.concatenate([values[1:], [[50.0]]]).astype(np.float32)
        advantages, _ = compute_gae(rewards, values, next_values, TERMINATEDS, np.zeros_like(TERMINATEDS), gamma,
                                    lam)
        return advantages

    advantages = gae(REWARDS, VALUES)
    assert advantages[1, 0] == pytest.approx(2.0 - 20.0)
    assert advantages[0, 0] == pytest.approx(1.0 + gamma * 20.0 - 10.0 + gamma * lam * (2.0 - 20.0))
    changed = gae(_after_the_loss_changed(REWARDS), _after_the_loss_changed(VALUES))
    np.testing.assert_allclose(changed[:2], advantages[:2])
    assert not np.allclose(changed[2:], advantages[2:])


def test_vtrace_does_not_bootstrap_across_a_lost_life():
    def targets(rewards: np.ndarray, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.zeros(4, 1)
        out = vtrace(behaviour_logp=logp, target_logp=logp, rewards=torch.from_numpy(rewards),
                     values=torch.from_numpy(values), bootstrap_value=torch.tensor([50.0]),
                     terminateds=torch.from_numpy(TERMINATEDS), truncateds=torch.zeros(4, 1, dtype=torch.bool),
                     gamma=0.9)
        return out.vs, out.pg_advantages

    vs, advantages = targets(REWARDS, VALUES)
    assert vs[1, 0].item() == pytest.approx(2.0) and advantages[1, 0].item() == pytest.approx(2.0 - 20.0)
    changed_vs, changed_advantages = targets(_after_the_loss_changed(REWARDS), _after_the_loss_changed(VALUES))
    torch.testing.assert_close(changed_vs[:2], vs[:2])
    torch.testing.assert_close(changed_advantages[:2], advantages[:2])


def test_n_step_replay_windows_stop_at_a_lost_life():
    steps = len(REWARDS)
    buffer = ReplayBuffer(capacity=64, seed=0)
    buffer.add({
        Columns.OBS: np.arange(steps, dtype=np.float32).reshape(steps, 1, 1),
        Columns.ACTIONS: np.zeros((steps, 1), dtype=np.int64),
        Columns.REWARDS: REWARDS,
        Columns.TERMINATEDS: TERMINATEDS,
        Columns.TRUNCATEDS: np.zeros_like(TERMINATEDS),
        Columns.LOSS_MASK: np.ones_like(TERMINATEDS),
    })
    sample = buffer.sample(200, n_step=3, gamma=0.9)
    starts = sample[Columns.OBS][:, 0].astype(int)
    assert set(starts) == {0, 1, 2}, "the step after the lost life starts transitions (the newest row does not)"
    expected = {  # start row -> (steps taken, terminated, next observation's row, n-step reward)
        0: (2, True, 2, 1.0 + 0.9 * 2.0),
        1: (1, True, 2, 2.0),
        2: (1, False, 3, 3.0),  # the write head ends it: row 3's next observation is not stored yet
    }
    for start, (n, terminated, next_row, reward) in expected.items():
        rows = starts == start
        assert np.all(sample[Columns.N_STEP][rows] == n), start
        assert np.all(sample[Columns.TERMINATEDS][rows] == terminated), start
        assert np.all(sample[Columns.NEXT_OBS][rows, 0] == next_row), start
        np.testing.assert_allclose(sample[Columns.REWARDS][rows], reward, rtol=1e-6)


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_trains_on_an_atari_game(tmp_path: Path):
    """`rlrun env=atari env.id=ALE/Breakout-v5 env.atari.frame_stack=...`, the documented command, trains a few
    hundred steps (with a CNN of the model catalog) and evaluates a game. An untrained greedy policy may never
    press FIRE after Breakout's first lost life, so the evaluation game is cut at env.max_episode_steps."""
    proc = subprocess.run(
        [RLRUN, "env=atari", "env.id=ALE/Breakout-v5", "env.atari.frame_stack=2", "env.max_episode_steps=300",
         "stop.timesteps=256",
         "algo.train_batch_size=128", "algo.minibatch_size=64", "algo.num_epochs=1",
         "env_runners.num_envs_per_runner=2", "evaluation.episodes=1", "logger.console=plain",
         f"model.conv_filters={TINY_CNN}".replace(" ", ""),
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done (timesteps >= 256)" in proc.stdout, proc.stdout
    # ALE's banner, printed for every env it builds, stays off the console.
    assert "Powered by Stella" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "eval_return=" in proc.stdout

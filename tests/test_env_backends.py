"""`env.backend` (issue 25): sync, async and envpool give the env runner the same envs.

The Atari pipeline keeps its observation shape and dtype, action space and return semantics under sync
(gymnasium's wrappers) and envpool (its own options, mapped from the same `env.atari` keys): whole games are
reported, and each of Breakout's 5 lives ends in a terminal row of the batch. async steps the same envs as
sync, in processes of their own, so the batches are equal. envpool is seeded when it is built and its state
cannot be captured: a resumed runner starts fresh episodes.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import RLRUN
from test_config import build

from rlrun.algorithms.ppo.ppo import PPOConfig
from rlrun.cli import EXIT_USAGE
from rlrun.config.errors import ConfigError
from rlrun.config.schema import EnvSchema
from rlrun.core.columns import Columns
from rlrun.env.env_creation import env_spaces, make_vector_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_spec import BACKENDS, AtariSpec, EnvSpec

pytestmark = pytest.mark.xdist_group("env_backends")

TINY_CNN = [[8, 8, 8], [8, 4, 4]]  # the default Nature CNN would dominate the time of these tests
BREAKOUT_STEPS = 320  # per copy: a random game of Breakout lasts ~120 steps


def _runner(env: str, backend: str, num_envs: int = 2, **environment: Any) -> EnvRunner:
    torch.manual_seed(0)  # the module's initial weights (an algorithm seeds them from `seed`)
    config = (PPOConfig().environment(env, backend=backend, **environment)
              .env_runners(num_envs_per_env_runner=num_envs).rl_module(model_config={"conv_filters": TINY_CNN})
              .debugging(seed=0))
    return EnvRunner(config.env_runner_spec())


def test_backend_choices_are_the_implemented_ones():
    choices = next(f for f in EnvSchema.__dataclass_fields__.values() if f.name == "backend").metadata["choices"]
    assert choices == BACKENDS


@pytest.fixture(scope="module", params=["sync", "envpool"])
def breakout(request) -> dict[str, Any]:
    runner = _runner("ALE/Breakout-v5", request.param, atari=True)
    try:
        batch = runner.sample(num_timesteps=2 * BREAKOUT_STEPS)
        metrics = runner.get_metrics()
    finally:
        runner.stop()
    return {"backend": request.param, "runner": runner, "batch": batch, "metrics": metrics}


def test_atari_spaces_are_the_same_under_every_backend(breakout):
    runner = breakout["runner"]
    obs_space, act_space = env_spaces(EnvSpec("ALE/Breakout-v5", atari=AtariSpec()))
    assert runner.observation_space == obs_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert runner.action_space == act_space == gym.spaces.Discrete(4)
    batch = breakout["batch"]
    assert batch[Columns.OBS].dtype == np.uint8 and batch[Columns.OBS].shape == (BREAKOUT_STEPS, 2, 4, 84, 84)
    assert batch[Columns.BOOTSTRAP_OBS].dtype == np.uint8


def test_atari_games_are_whole_and_each_lost_life_is_terminal(breakout):
    """Breakout has 5 lives: each game is reported once, with all its steps, and has 5 terminal rows in the
    batch (4 lost lives, then the game's end), the game's last row being its last terminal one."""
    batch, metrics = breakout["batch"], breakout["metrics"]
    mask, terminated = batch[Columns.LOSS_MASK], batch[Columns.TERMINATEDS]
    rewards = batch[Columns.REWARDS]
    assert set(np.unique(rewards[mask])) <= {0.0, 1.0}, "Breakout's rewards (1, 4, 7) are clipped to 1"
    games = 0
    for env in range(2):
        reported = [(r, n) for r, n, e in zip(metrics["episode_returns"], metrics["episode_lens"],
                                              metrics["episode_envs"]) if e == env]
        resets = np.flatnonzero(~mask[:, env])  # the row after each game's last one
        starts = [0, *(resets + 1)]
        for i, (start, stop) in enumerate(zip(starts, resets)):
            rows = slice(start, stop)
            if i > 0:  # the first game in the batch began before it; a game starts with all its lives
                assert terminated[rows, env].sum() == 5, (env, start, stop)
            assert terminated[stop - 1, env]
            ret, length = reported[i]
            assert length >= stop - start and (i == 0 or length == stop - start)
            assert ret >= rewards[rows, env].sum()
            games += 1
        assert len(reported) == len(resets)
    assert games >= 2, f"{breakout['backend']}: no whole game in {BREAKOUT_STEPS} steps per copy"


def test_async_steps_the_same_envs_as_sync():
    """Acrobot (no vector entry point of gymnasium's: sync is a SyncVectorEnv) with short episodes, so that the
    batch crosses NEXT_STEP autoresets: the same batch from processes of their own."""
    batches = {}
    for backend in ("sync", "async"):
        runner = _runner("Acrobot-v1", backend, max_episode_steps=20)
        try:
            batches[backend] = runner.sample(num_timesteps=2 * 50)
            assert runner.get_metrics()["episode_lens"] == [20] * 4
        finally:
            runner.stop()
    assert type(runner.env).__name__ == "AsyncVectorEnv"
    assert (~batches["async"][Columns.LOSS_MASK]).sum() == 4  # the autoreset rows
    for column, value in batches["sync"].items():
        np.testing.assert_array_equal(batches["async"][column], value, err_msg=column)


def test_envpool_is_seeded_when_built_and_resumes_with_fresh_episodes(caplog):
    first = _runner("ALE/Breakout-v5", "envpool", atari=True)
    second = _runner("ALE/Breakout-v5", "envpool", atari=True)
    try:
        a, b = first.sample(num_timesteps=40), second.sample(num_timesteps=40)
        np.testing.assert_array_equal(a[Columns.OBS], b[Columns.OBS])
        state = first.get_state()
        assert state["sampling"] and "episodes_in_flight" not in state  # envpool's state is not plain data
        second.set_state(state)
        assert "cannot be restored; starting fresh ones" in caplog.text
        after = second.sample(num_timesteps=40)
        assert after[Columns.LOSS_MASK].all() and after[Columns.OBS].shape == (20, 2, 4, 84, 84)
    finally:
        first.stop()
        second.stop()


def test_mujoco_on_envpool_has_gymnasiums_spaces():
    """envpool declares float64 actions; the runner sees gymnasium's float32 Box, and float32 observations."""
    obs_space, act_space = env_spaces("Hopper-v5")
    env = make_vector_env(EnvSpec("Hopper-v5", backend="envpool", max_episode_steps=5), 2, seed=0)
    try:
        assert env.single_observation_space == obs_space and env.single_action_space == act_space
        env.reset()
        for _ in range(6):
            *_, truncated, _ = env.step(np.zeros((2, 3), dtype=np.float32))
        assert truncated.dtype == bool
    finally:
        env.close()
    runner = _runner("Hopper-v5", "envpool", max_episode_steps=5)
    try:
        batch = runner.sample(num_timesteps=2 * 12)
        assert batch[Columns.OBS].dtype == np.float32 and batch[Columns.ACTIONS].dtype == np.float32
        assert (~batch[Columns.LOSS_MASK]).sum() == 4 and batch[Columns.TRUNCATEDS].sum() == 4
    finally:
        runner.stop()


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    (["env.backend=envpool"], "env.backend=envpool runs Atari (ALE/<Game>-v5) and MuJoCo (Hopper-v5, ...) envs; "
                              "'CartPole-v1' is neither"),
    (["env.id=ALE/Pong-v5", "env.backend=envpool"], "env.backend=envpool plays Atari only with its preprocessing"),
    (["env=atari", "env.id=CartPole-v1"], "env.atari preprocesses Atari games (ALE ids such as ALE/Pong-v5); "
                                          "'CartPole-v1' is not one"),
    (["env.backend=threads"], "env.backend must be one of ['sync', 'async', 'envpool'] (got 'threads')"),
    (["env=multi_cartpole", "env.backend=async"], "env.backend is single-agent only"),
    (["env=atari", "++env.env_config.frameskip=2"], "env.env_config.frameskip is set by env.atari.frame_skip"),
    (["env=atari", "env.atari.repeat_action_probability=1.5"],
     "env.atari.repeat_action_probability must be in [0, 1] (got 1.5)"),
])
def test_env_spec_errors_are_one_line(overrides: list[str], message: str):
    with pytest.raises(ConfigError) as error:
        build(*overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


CLI_CASES = {
    "atari-key-without-atari": (["env.atari.frame_stack=4"],
                                "rlrun: error: cannot set env.atari.frame_stack: env.atari is null in this config"),
    "envpool-cartpole": (["env.backend=envpool"], "rlrun: error: env.backend=envpool runs Atari"),
    "bad-wrapper": (["env.wrappers=[{nme: ClipReward}]"], "rlrun: error: env.wrappers[0] must be"),
}


@pytest.fixture(scope="module")
def cli_errors(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("env_cli_errors")
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"}

    def run(name: str) -> subprocess.CompletedProcess:
        (base / name).mkdir()
        return subprocess.run([RLRUN, *CLI_CASES[name][0], f"hydra.run.dir={base / name / 'run'}"],
                              capture_output=True, text=True, timeout=180, cwd=base / name, env=env)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CLI_CASES, pool.map(run, CLI_CASES)))


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_env_errors_through_the_cli(cli_errors, name: str):
    """One line, exit 2, no traceback and no run directory."""
    proc = cli_errors[name]
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(CLI_CASES[name][1]), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    run_dir = next(Path(arg.partition("=")[2]) for arg in proc.args if arg.startswith("hydra.run.dir="))
    assert not run_dir.exists()

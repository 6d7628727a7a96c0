"""`env.wrappers` (issue 25): gymnasium wrappers on each env copy, in order, after rlrun's own preprocessing.

An item is a class name of `gymnasium.wrappers`, `pkg.module:Class`, or `{name: ..., kwargs: {...}}`; anything
else is a one-line error naming the item and the forms allowed, before any env is built.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from test_config import build

from rlrun.config.errors import ConfigError
from rlrun.core.columns import Columns
from rlrun.env.env_creation import make_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_spec import AtariSpec, EnvSpec, WrapperSpec, wrapper_specs

pytestmark = pytest.mark.xdist_group("env_wrappers")


class DoubleReward(gym.RewardWrapper):
    """A user's wrapper, given as `test_env_wrappers:DoubleReward`."""

    def reward(self, reward: float) -> float:
        return 2.0 * reward


def _sample(*overrides: str, steps: int = 8) -> tuple[EnvRunner, dict[str, np.ndarray]]:
    _, config = build(*overrides, "env_runners.num_envs_per_runner=2", "model.conv_filters=[[8,8,8]]")
    runner = EnvRunner(config.env_runner_spec())
    try:
        return runner, runner.sample(num_timesteps=2 * steps)
    finally:
        runner.stop()


def test_the_forms_of_an_item():
    assert wrapper_specs(["ClipReward", "test_env_wrappers:DoubleReward",
                          {"name": "TimeLimit", "kwargs": {"max_episode_steps": 5}},
                          {"name": "ResizeObservation", "kwargs": {"shape": [64, 64]}}]) == (
        WrapperSpec("ClipReward"), WrapperSpec("test_env_wrappers:DoubleReward"),
        WrapperSpec("TimeLimit", {"max_episode_steps": 5}),
        WrapperSpec("ResizeObservation", {"shape": (64, 64)}),  # YAML lists become the tuples wrappers want
    )
    assert WrapperSpec("test_env_wrappers:DoubleReward").resolve() is DoubleReward
    assert WrapperSpec("FrameStackObservation").resolve() is gym.wrappers.FrameStackObservation


def test_wrappers_apply_in_order_to_every_copy():
    """Doubling then clipping to 1 gives 1 per CartPole step; clipping then doubling gives 2."""
    clip = "{name: ClipReward, kwargs: {min_reward: 0, max_reward: 1}}"
    for wrappers, reward in ((f"[test_env_wrappers:DoubleReward, {clip}]", 1.0),
                             (f"[{clip}, test_env_wrappers:DoubleReward]", 2.0)):
        _, batch = _sample(f"env.wrappers={wrappers}")
        assert np.all(batch[Columns.REWARDS] == reward), wrappers


def test_wrappers_from_the_command_line_change_what_the_runner_sees():
    """The issue's example on an ALE game's raw frames: 210x160x3 resized to 64x64x3, kept uint8."""
    runner, batch = _sample("env.id=ALE/Pong-v5", "env.wrappers=[{name: ResizeObservation, kwargs: {shape: [64, 64]}}]",
                            steps=3)
    assert runner.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert batch[Columns.OBS].shape == (3, 2, 64, 64, 3) and batch[Columns.OBS].dtype == np.uint8


def test_wrappers_come_after_the_atari_preprocessing():
    env = make_env(EnvSpec("ALE/Breakout-v5", atari=AtariSpec(frame_stack=2),
                           wrappers=(WrapperSpec("FrameStackObservation", {"stack_size": 3}),)))
    try:
        assert env.observation_space.shape == (3, 2, 84, 84)
        assert isinstance(env, gym.wrappers.FrameStackObservation)
        assert isinstance(env.env, gym.wrappers.FrameStackObservation)  # the Atari stack, inside
    finally:
        env.close()


@pytest.mark.parametrize(("wrappers", "message"), [
    ("[{nme: ClipReward}]", "env.wrappers[0] must be a class name of gymnasium.wrappers (FrameStackObservation), "
                            "pkg.module:Class or {name: <one of those>, kwargs: {...}} (got {'nme': 'ClipReward'})"),
    ("[ClipReward, 3]", "env.wrappers[1] must be a class name of gymnasium.wrappers"),
    ("[{name: ClipReward, kwargs: 3}]", "env.wrappers[0] must be"),
    ("[ClipRewards]", "env.wrappers[0]: gymnasium.wrappers has no class 'ClipRewards'; did you mean ClipReward?"),
    ("[no_such_module:Wrapper]", "env.wrappers[0]: 'no_such_module:Wrapper' cannot be imported"),
    ("['gymnasium.wrappers:']", "env.wrappers[0]: must look like pkg.module:ClassName (got 'gymnasium.wrappers:')"),
    ("[rlrun.env.env_spec:EnvSpec]", "env.wrappers[0]: 'rlrun.env.env_spec:EnvSpec' is not a gymnasium.Wrapper "
                                     "subclass"),
    ("[{name: TimeLimit, kwargs: {max_steps: 5}}]", "env 'CartPole-v1' could not be created with env.env_config={} "
                                                    "and env.wrappers="),
])
def test_a_bad_wrapper_is_one_line(wrappers: str, message: str):
    with pytest.raises(ConfigError) as error:
        build(f"env.wrappers={wrappers}")
    assert message in str(error.value) and "\n" not in str(error.value)

"""Atari preprocessing with gymnasium's own wrappers, and what tells an ALE env apart.

`atari_env` turns one ALE env (made with `frameskip=1`) into the agent's view that `env.atari.*` describes:
gymnasium's `AtariPreprocessing` (no-op starts, frame skip with max-pooling of the last two frames, resize,
grey), FIRE after reset in games that need it (`FireReset`: gymnasium has no such wrapper), an optional
TimeLimit counted in agent steps, and `FrameStackObservation` on axis 0, whose slots before an episode's first
frame repeat that frame (gymnasium's "reset" padding, as envpool's stacks and CleanRL's). RGB frames are moved
channels first and their stack flattened to `(3 * frame_stack, H, W)`, the layout envpool gives, so both backends
agree.

Lives and reward clipping are not done here: they shape the training signal only, in the env runner
(rlrun/env/training_signals.py), while the env plays the whole game.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import gymnasium as gym
import numpy as np

from rlrun.env.env_spec import AtariSpec, EnvError

# gymnasium's ALE ids are made by this entry point (ALE/Pong-v5, PongNoFrameskip-v4, ...).
ALE_ENTRY_POINT = "ale_py.env:AtariEnv"
# Old-style ids (PongNoFrameskip-v4, Pong-v0): the game's name before the variant.
_OLD_ALE_ID = re.compile(r"^(?P<game>[A-Za-z0-9]+?)(?:NoFrameskip|Deterministic)?-v[0-4]$")
# The ALE kwargs that env.atari sets itself; giving them in env.env_config too would be ambiguous.
ATARI_OWNED_KWARGS = {"frameskip": "env.atari.frame_skip",
                      "repeat_action_probability": "env.atari.repeat_action_probability"}


def is_ale_id(env_id: str) -> bool:
    """Whether `env_id` (registered, with any `module:` prefix removed) is made by ale-py's AtariEnv."""
    return env_id in gym.registry and gym.spec(env_id).entry_point == ALE_ENTRY_POINT


def envpool_atari_task(env_id: str) -> str:
    """envpool's task id of an ALE id: `ALE/Pong-v5` and `PongNoFrameskip-v4` -> `Pong-v5`."""
    if env_id.startswith("ALE/"):
        return env_id[len("ALE/"):]
    m = _OLD_ALE_ID.match(env_id)
    return f"{m['game']}-v5" if m else env_id


@functools.cache
def quiet_ale() -> None:
    """ALE prints its banner (its version, "[Powered by Stella]") for every env it builds: each env copy, each
    env runner, each evaluation. Only its errors reach the console."""
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


def ale_kwargs(atari: AtariSpec, env_config: dict[str, Any]) -> dict[str, Any]:
    """The ALE constructor's kwargs under preprocessing: every frame (AtariPreprocessing skips), sticky actions
    as env.atari says; EnvError if env.env_config sets either itself."""
    owned = sorted(set(env_config) & set(ATARI_OWNED_KWARGS))
    if owned:
        raise EnvError(f"env.env_config.{owned[0]} is set by {ATARI_OWNED_KWARGS[owned[0]]} when env.atari is on; "
                       f"set that key instead")
    return {**env_config, "frameskip": 1, "repeat_action_probability": atari.repeat_action_probability}


def atari_env(env: gym.Env, atari: AtariSpec, max_episode_steps: int | None) -> gym.Env:
    """The preprocessed env (see the module doc); `env` is an ALE env made with `ale_kwargs`."""
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=atari.noop_max, frame_skip=atari.frame_skip, screen_size=atari.screen_size,
        terminal_on_life_loss=False, grayscale_obs=atari.grayscale, grayscale_newaxis=False, scale_obs=False)
    if atari.fire_reset and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    if not atari.grayscale:
        height, width, channels = env.observation_space.shape
        space = gym.spaces.Box(0, 255, (channels, height, width), np.uint8)
        env = gym.wrappers.TransformObservation(env, lambda obs: np.moveaxis(obs, -1, 0), space)
    env = gym.wrappers.FrameStackObservation(env, atari.frame_stack)
    if not atari.grayscale:
        env = gym.wrappers.ReshapeObservation(env, atari.observation_shape)
    return env


class FireReset(gym.Wrapper):
    """After each reset, press FIRE (then UP, as in the baselines): games such as Breakout wait for FIRE to start.

    As CleanRL's and SB3's FireResetEnv; the two steps' rewards (none at a game's start) are dropped, and the
    info is the last step's, so that it has the lives the game starts with. A game that ends during them (it
    does not, in practice) is reset once more.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if meanings[1] != "FIRE" or len(meanings) < 3:
            raise EnvError(f"FireReset needs FIRE as action 1 and at least 3 actions (got {meanings})")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, step_info = self.env.step(action)
            info = {**info, **step_info}
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info

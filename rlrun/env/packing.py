"""The env side of structured observations: every env copy hands out packed uint8 rows (rlrun/core/packed_space.py).

Wrapping the env itself, as the last wrapper of each copy, is what lets every component after it (vector
envs, env runners, replay buffers, datasets, Ray) stay Box-only: they never see a Dict.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlrun.core.packed_space import PackedSpace


class PackObservation(gym.ObservationWrapper):
    """A non-Box observation as one flat uint8 row of its parts' raw bytes; `observation_space` is the PackedSpace."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space: PackedSpace = PackedSpace(env.observation_space)

    def observation(self, observation: Any) -> np.ndarray:
        return self.observation_space.pack(observation)


def pack_observations(env: gym.Env) -> gym.Env:
    """`env` with packed observations when its space is not a Box; a Box env as it is."""
    return env if isinstance(env.observation_space, gym.spaces.Box) else PackObservation(env)


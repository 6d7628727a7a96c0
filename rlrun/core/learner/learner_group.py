"""LearnerGroup: the single handle an algorithm uses to train, however many Learners there are.

`num_learners=0` holds one Learner in this process. `num_learners>=1` holds
that many Learner actors on Ray forming one DDP process group
(`LearnerActors`). Both answer the same calls, so an algorithm never knows
which one it drives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlrun.core.columns import COMPONENT_RL_MODULE
from rlrun.core.learner.learner import Learner

if TYPE_CHECKING:
    from rlrun.core.learner.config import LearnerConfig
    from rlrun.core.learner.learner_actors import LearnerActors


class LearnerGroup:
    """One local Learner, or `num_learners` DDP Learner actors behind the same interface."""

    def __init__(self, *, config: LearnerConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        self.config = config
        self._learner: Learner | LearnerActors
        if config.num_learners > 0:
            from rlrun.core.learner.learner_actors import LearnerActors

            self._learner = LearnerActors(config=config, observation_space=observation_space,
                                          action_space=action_space)
        else:
            self._learner = config.get_learner_class()(
                config=config, observation_space=observation_space, action_space=action_space
            )
            self._learner.build()

    @property
    def is_remote(self) -> bool:
        return self.config.num_learners > 0

    @property
    def num_restarts(self) -> int:
        """How often the learner actors were rebuilt after one died (a local learner dies with the run)."""
        return self._learner.num_restarts if self.is_remote else 0

    def update(
        self,
        *,
        batch: Mapping[str, Any],
        timesteps: Mapping[str, int] | None = None,
        async_update: bool = False,
    ) -> list[dict[str, Any]]:
        """Update all learners on `batch`.

        Blocking: returns one result dict per learner (DDP ranks report the same
        all-reduced metrics). `async_update=True`: returns at once with the
        results of earlier async updates that have finished, one dict per update.
        """
        if not self.is_remote:
            if async_update:
                raise ValueError(
                    "async_update=True needs learner actors (learners.num >= 1); "
                    "with learners.num=0 updates run in this process and are always blocking"
                )
            return [self._learner.update(batch=batch, timesteps=timesteps)]
        if async_update:
            return self._learner.update_async(batch, timesteps)
        return self._learner.update(batch, timesteps)

    def update_from_dataset(self, *, timesteps: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """One update of offline learners, each on the next rows of its own dataset shard; blocks.

        Returns one result dict per learner, as `update()` does.
        """
        if self.is_remote:
            return self._learner.update_from_dataset(timesteps)
        return [self._learner.update_from_dataset(timesteps=timesteps)]

    def get_state(self, components: Any = None) -> dict[str, Any]:
        return self._learner.get_state(components)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Applies to every learner, so all DDP ranks stay identical."""
        self._learner.set_state(state)

    def get_weights(self) -> dict[str, Any]:
        return self._learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE]

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        self._learner.set_state({COMPONENT_RL_MODULE: weights})

    def save_to_path(self, path: str | Path) -> Path:
        return self._learner.save_to_path(path)

    def restore_from_path(self, path: str | Path) -> None:
        self._learner.restore_from_path(path)

    def stop(self) -> None:
        """Release the learner actors and their placement group (nothing to release locally)."""
        if self.is_remote:
            self._learner.stop()

"""LearnerGroup: the single handle an algorithm uses to train, however many Learners there are.

With `num_learners=0` it holds one local Learner in this process. Callers only
use the methods below, so the data-parallel variant (Learner actors in one
torch.distributed group) can be added behind them without changing any caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlrun.core.columns import COMPONENT_RL_MODULE
from rlrun.core.learner.learner import Learner

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig


class LearnerGroup:
    """One local Learner (`num_learners=0`); remote DDP learners share this interface."""

    def __init__(self, *, config: AlgorithmConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        if config.num_learners > 0:
            raise NotImplementedError(
                "learners.num > 0 (DDP learner actors on Ray) is not available yet; use learners.num=0"
            )
        self.config = config
        self._learner: Learner = config.get_learner_class()(
            config=config, observation_space=observation_space, action_space=action_space
        )
        self._learner.build()

    def update(
        self,
        *,
        batch: Mapping[str, Any],
        timesteps: Mapping[str, int] | None = None,
        async_update: bool = False,
    ) -> list[dict[str, Any]]:
        """Update all learners on `batch`; returns one result dict per learner."""
        if async_update:
            raise ValueError(
                "async_update=True needs learner actors (learners.num >= 1); "
                "with learners.num=0 updates run in this process and are always blocking"
            )
        return [self._learner.update(batch=batch, timesteps=timesteps)]

    def get_state(self, components: Any = None) -> dict[str, Any]:
        return self._learner.get_state(components)

    def set_state(self, state: Mapping[str, Any]) -> None:
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
        """Release learner resources (nothing to release for a local learner)."""

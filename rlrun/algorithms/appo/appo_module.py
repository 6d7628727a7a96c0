"""APPO's module: IMPALA's networks plus a frozen target copy, which anchors the surrogate and the KL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from rlrun.algorithms.impala.impala_module import IMPALAModule, RecurrentIMPALAModule
from rlrun.core.columns import Columns
from rlrun.core.rl_module.rl_module import TensorDict


class TargetNetworks:
    """A mixin for APPO's modules: `target` is a copy of the networks (of `online_class`) without gradients, part
    of the weights (so of every checkpoint)."""

    online_class: type[IMPALAModule | RecurrentIMPALAModule]

    def __init__(
        self, observation_space: gym.Space, action_space: gym.Space, model_config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(observation_space, action_space, model_config)
        self.target = self.online_class(observation_space, action_space, model_config)
        self.update_target()
        self.target.requires_grad_(False)

    def online_state(self) -> dict[str, Any]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("target.")}

    def update_target(self) -> None:
        """target <- online (a hard copy, as RLlib's APPO)."""
        self.target.load_state_dict(self.online_state())

    def forward_target(self, batch: TensorDict) -> TensorDict:
        """The target policy's action-distribution inputs, for `[B, T, ...]` observations."""
        return {Columns.ACTION_DIST_INPUTS: self.target.forward_train(batch)[Columns.ACTION_DIST_INPUTS]}


class APPOModule(TargetNetworks, IMPALAModule):
    """IMPALA's networks and their target copy."""

    online_class = IMPALAModule


class RecurrentAPPOModule(TargetNetworks, RecurrentIMPALAModule):
    """IMPALA's recurrent networks (`model.use_lstm`) and their target copy."""

    online_class = RecurrentIMPALAModule

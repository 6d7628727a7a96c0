"""LearnerConfig: what the base Learner, LearnerGroup and the learner actors read from an algorithm's config.

A `typing.Protocol`, so rlrun/core type-checks against its own interface and never imports rlrun/algorithms:
`AlgorithmConfig` (every algorithm's config) satisfies it structurally. An algorithm's own Learner reads its
own keys (clip_param, tau, ...) from the same object, typed as its own config class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rlrun.core.learner.learner import Learner
    from rlrun.core.rl_module.spec import RLModuleSpec


class LearnerConfig(Protocol):
    """The keys and derived values the learners' shared machinery uses (`AlgorithmConfig`'s names)."""

    seed: int
    # The `model` keys (a recurrent module's learner cuts sequences of `max_seq_len`).
    model_config: dict[str, Any]
    lr: float
    # Piecewise [[timestep, lr], ...] replacing `lr`, or None.
    lr_schedule: Sequence[Sequence[float]] | None
    grad_clip: float | None
    num_epochs: int
    num_learners: int
    num_cpus_per_learner: float
    num_gpus_per_learner: float
    # Learner actors rebuilt after a death, at most (LearnerGroup); non-finite gradient steps in a row, at most.
    max_num_learner_restarts: int
    max_non_finite_updates: int

    @property
    def minibatch_size(self) -> int:
        """Rows per gradient step."""
        ...

    @property
    def is_multi_agent(self) -> bool:
        """Whether the learner's spaces are Dicts keyed by module id (a PettingZoo env's modules)."""
        ...

    def is_trained(self, module_id: str) -> bool:
        """Whether updates train `module_id` (`multi_agent.policies_to_train`)."""
        ...

    def learner_threads(self, images: bool) -> int:
        """torch threads of one learner, given whether any module sees images."""
        ...

    def get_rl_module_spec(self) -> RLModuleSpec:
        """The module each module id is built from."""
        ...

    def get_learner_class(self) -> type[Learner]:
        """The Learner class a LearnerGroup builds (locally or in each actor)."""
        ...

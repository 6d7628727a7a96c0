"""The `algo=bc` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.algorithms.offline.schema import OfflineAlgoSchema
from rlrun.config.fields import override


@dataclass
class BCSchema(OfflineAlgoSchema):
    """The `algo=bc` keys: those of every offline algorithm."""

    name: str = override(OfflineAlgoSchema, "name", "bc")

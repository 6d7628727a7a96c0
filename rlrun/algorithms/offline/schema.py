"""Keys every offline algorithm shares, apart from the algorithms: the algorithms' schemas extend them at
start-up, so this module imports no torch, env or learner code."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.config.fields import override
from rlrun.config.schema import AlgoSchema


@dataclass
class OfflineAlgoSchema(AlgoSchema):
    """Keys every offline algorithm has: one gradient step per update on `train_batch_size` rows."""

    lr: float = override(AlgoSchema, "lr", 1e-3)
    train_batch_size: int = override(AlgoSchema, "train_batch_size", 256, "Dataset rows per learner update, read "
                                     "from each learner's shard; what stop.timesteps counts.")
    minibatch_size: int | None = override(AlgoSchema, "minibatch_size", None, "Rows per gradient step; null = "
                                          "train_batch_size (one gradient step per update).")
    num_epochs: int = override(AlgoSchema, "num_epochs", 1)
    grad_clip: float | None = override(AlgoSchema, "grad_clip", None)

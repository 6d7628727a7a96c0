"""The `algo=impala` keys, apart from the algorithm: Hydra composes every algorithm's config at start-up, so this
module imports no torch, env or learner code (rlrun.algorithms.registry.SCHEMAS names it)."""

from __future__ import annotations

from dataclasses import dataclass

from rlrun.config.fields import key, override
from rlrun.config.schema import AlgoSchema


@dataclass
class IMPALASchema(AlgoSchema):
    """The `algo=impala` keys (RLlib's names and meanings)."""

    name: str = override(AlgoSchema, "name", "impala")
    lr: float = override(AlgoSchema, "lr", 5e-4)
    train_batch_size: int = override(AlgoSchema, "train_batch_size", 500, "Env steps per learner update: the "
                                     "fragments ready at the runners, stacked until at least this many.")
    minibatch_size: int | None = override(AlgoSchema, "minibatch_size", None, "Env steps per gradient step, cut as "
                                          "whole env columns; null = the whole train batch (one gradient step).")
    num_epochs: int = override(AlgoSchema, "num_epochs", 1)
    grad_clip: float | None = override(AlgoSchema, "grad_clip", 40.0)
    vf_loss_coeff: float = key(0.5, "Weight of the value-function loss in the total loss.", bounds=">= 0")
    entropy_coeff: float = key(0.01, "Weight of the entropy bonus; larger explores more.", bounds=">= 0")
    vtrace_clip_rho_threshold: float = key(1.0, "V-trace: clip of the importance weights rho in the value "
                                           "targets.", bounds="> 0")
    vtrace_clip_pg_rho_threshold: float = key(1.0, "V-trace: clip of the importance weights rho in the policy-"
                                              "gradient advantages.", bounds="> 0")
    lambda_: float = key(1.0, "V-trace's trace-cutting lambda (c_t = lambda * min(1, pi / mu)); 1 = the paper's "
                         "V-trace.", bounds="in [0, 1]")
    broadcast_interval: int = key(1, "Learner updates between two weight broadcasts to the env runners.",
                                  bounds=">= 1", integer=True, note="learner updates between weight broadcasts")

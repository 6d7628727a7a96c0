"""Keys every off-policy algorithm shares, apart from the algorithms: the algorithms' schemas extend them at
start-up, so this module imports no torch, env or learner code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlrun.config.fields import key, override
from rlrun.config.schema import AlgoSchema


@dataclass
class ReplayBufferSchema:
    """`algo.replay_buffer.*`: capacity in env steps, FIFO; `prioritized` adds alpha and an annealed beta."""

    # The names of rlrun.data.replay_buffers.REPLAY_BUFFERS, written out so as not to import the buffers at
    # start-up (tests/test_startup.py checks they agree).
    type: str = key("uniform", "`uniform` draws stored env steps uniformly; `prioritized` in proportion to "
                    "(|TD error| + epsilon) ** alpha.", choices=["prioritized", "uniform"])
    capacity: int = key(50_000, "Env steps the buffer holds (FIFO: the oldest go first); at least "
                        "train_batch_size.")
    alpha: float = key(0.6, "Prioritized: how strongly priorities skew sampling (0 = uniform).", bounds=">= 0")
    beta: float = key(0.4, "Prioritized: importance-sampling correction of the skew (1 = full correction).",
                      bounds="in [0, 1]")
    beta_schedule: list[Any] | None = key(
        None, "Prioritized: piecewise-linear beta over env steps sampled, e.g. `[[0, 0.4], [100000, 1.0]]`; it must "
        "start at `beta`. null = the constant `beta`.")
    epsilon: float = key(1e-6, "Prioritized: added to each |TD error| so that no priority is 0.", bounds="> 0")


@dataclass
class OffPolicySchema(AlgoSchema):
    """Keys every replay-buffer algorithm has (RLlib's names and meanings)."""

    train_batch_size: int = override(AlgoSchema, "train_batch_size", 32,
                                     "Rows (env steps) drawn from the replay buffer per learner update.")
    minibatch_size: int | None = override(AlgoSchema, "minibatch_size", None,
                                          "Rows per gradient step; null = train_batch_size (one gradient step per "
                                          "update).")
    num_epochs: int = override(AlgoSchema, "num_epochs", 1)
    replay_buffer: ReplayBufferSchema = key(doc="The replay buffer the env runners' samples go into.",
                                            default_factory=ReplayBufferSchema)
    n_step: int = key(1, "Steps of the n-step return in the TD target (1 = one-step).", bounds=">= 1", integer=True)
    target_network_update_freq: int = key(
        0, "Env steps sampled between two target network updates; 0 = after every gradient step.", bounds=">= 0",
        note="env steps")
    tau: float = key(1.0, "Polyak coefficient of a target network update: target <- tau * online + (1 - tau) * "
                     "target; 1 = hard copy.", bounds="in (0, 1]", note="1 = hard copy")
    num_steps_sampled_before_learning_starts: int = key(
        1000, "Env steps sampled into the buffer before the first update.", bounds=">= 0")
    training_intensity: float | None = key(
        None, "Rows trained per env step sampled (updates per iteration = this x env steps / train_batch_size); "
        "null = one update per iteration.", bounds="> 0", note="one update per iteration")


@dataclass
class ActorCriticSchema(OffPolicySchema):
    """Keys of the Box-action actor-critics (SAC, TD3): an optimizer each for the actor and the critics, and the
    defaults their papers share (RLlib's too)."""

    train_batch_size: int = override(OffPolicySchema, "train_batch_size", 256)
    # 1M env steps (preallocated: about 23 MB for Pendulum).
    replay_buffer: ReplayBufferSchema = override(OffPolicySchema, "replay_buffer",
                                                 default_factory=lambda: ReplayBufferSchema(capacity=1_000_000))
    grad_clip: float | None = override(OffPolicySchema, "grad_clip", None)
    tau: float = override(OffPolicySchema, "tau", 0.005)
    target_network_update_freq: int = override(OffPolicySchema, "target_network_update_freq", 0)
    # 256 = one gradient step of 256 rows per env step, as in both papers.
    training_intensity: float | None = override(OffPolicySchema, "training_intensity", 256.0)

    actor_lr: float | None = key(None, "Learning rate of the policy network; null = lr.", bounds="> 0",
                                 note="= algo.lr")
    critic_lr: float | None = key(None, "Learning rate of the Q networks; null = lr.", bounds="> 0",
                                  note="= algo.lr")

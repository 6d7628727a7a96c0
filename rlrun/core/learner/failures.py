"""Learner failures that end a run in one line: updates that stay non-finite, learner actors that keep dying."""

from __future__ import annotations


class NonFiniteUpdateError(RuntimeError):
    """`learners.max_non_finite_updates` gradient steps of a module in a row had a non-finite loss or gradient.

    Each was skipped, so the weights (and every checkpoint) are those of the last finite step.
    """


class LearnerFailure(RuntimeError):
    """Learner actors died more often than `learners.max_restarts` allows."""


def cause_of(error: BaseException) -> BaseException:
    """The learner's own exception inside a Ray task error (which re-raises it as a subclass of both)."""
    return getattr(error, "cause", None) or error

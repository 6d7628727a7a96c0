"""Callbacks: your code at rlrun's hooks (`callbacks=[pkg.module:Class, ...]`; docs/callbacks.md).

Subclass `Callback`, override the hooks you need, and log custom metrics with
`metrics_logger.log_value(key, value, reduce="mean")`.
"""

from rlrun.callbacks.callback import Callback, Episode
from rlrun.callbacks.dispatch import CallbackList, EpisodeHooks
from rlrun.callbacks.loading import build_callbacks, check_callbacks
from rlrun.callbacks.metrics import CALLBACK_METRICS, MetricsLogger, runner_metrics

__all__ = ["CALLBACK_METRICS", "Callback", "CallbackList", "Episode", "EpisodeHooks", "MetricsLogger",
           "build_callbacks", "check_callbacks", "runner_metrics"]

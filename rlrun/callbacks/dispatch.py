"""Calling the hooks: a driver's list of callbacks, and an env runner's episode hooks.

`CallbackList` calls one hook on every callback in order (the user's first, then the run's records:
TensorBoard and the trackers, so they record what the user's hooks added). `EpisodeHooks` binds, once per
runner, only the episode hooks its callbacks override: a runner asks `if hooks.end:` and does nothing else
for a hook nobody defined.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from rlrun.callbacks.callback import Callback, Episode, overrides
from rlrun.callbacks.metrics import MetricsLogger

log = logging.getLogger("rlrun")


class CallbackList:
    """The driver's callbacks, in the order their hooks are called."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def __iter__(self) -> Iterator[Callback]:
        return iter(list(self.callbacks))

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Each callback's `hook(**kwargs)`, in order; returns their return values."""
        return [self.call_one(callback, hook, **kwargs) for callback in self]

    def call_one(self, callback: Callback, hook: str, **kwargs: Any) -> Any:
        """`callback.hook(**kwargs)`. Once the run has started, a best-effort callback that raises (a tracker whose
        server went away) is dropped with a warning and the run goes on; any other error ends the run, as does
        every error of `on_run_start` (then nothing has trained yet)."""
        try:
            return getattr(callback, hook)(**kwargs)
        except Exception as e:
            if not callback.best_effort or hook == "on_run_start":
                raise
            log.warning("%s failed (%s: %s); the run goes on without it", describe(callback), type(e).__name__, e)
            self.callbacks.remove(callback)
            return None


def describe(callback: Callback) -> str:
    """How warnings name a callback: a tracker by its `logger=` option, others by class."""
    kind = getattr(callback, "kind", None)
    return f"logger={kind}" if kind else type(callback).__name__


class EpisodeHooks:
    """An env runner's overridden episode hooks, bound, and the metrics logger they log to."""

    def __init__(self, callbacks: Iterable[Callback], env_runner: Any) -> None:
        callbacks = list(callbacks)
        self.start = [cb.on_episode_start for cb in callbacks if overrides(cb, "on_episode_start")]
        self.step = [cb.on_episode_step for cb in callbacks if overrides(cb, "on_episode_step")]
        self.end = [cb.on_episode_end for cb in callbacks if overrides(cb, "on_episode_end")]
        self.any = bool(self.start or self.step or self.end)
        self.metrics_logger = MetricsLogger()
        self._env_runner = env_runner

    def __call__(self, hooks: list[Any], episode: Episode) -> None:
        for hook in hooks:
            hook(episode=episode, env_runner=self._env_runner, metrics_logger=self.metrics_logger)

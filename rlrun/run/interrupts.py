"""Ctrl-C ends a run between iterations, so its final checkpoint is a whole iteration.

An update cut short in the middle leaves the learners' weights part of a step ahead of the
iteration counters, and DDP ranks waiting forever in an all-reduce that a cancelled rank will
never join (the driver would then hang saving the checkpoint). So the first Ctrl-C only asks
the loop to stop after the iteration in flight; a second one interrupts at once and skips the
final checkpoint, leaving the last periodic one (which was written atomically) to resume from.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType


class ImmediateInterrupt(KeyboardInterrupt):
    """The second Ctrl-C: the iteration in flight is abandoned and no final checkpoint is written."""


@contextlib.contextmanager
def stop_between_iterations() -> Iterator[Callable[[], bool]]:
    """Within the block, SIGINT sets a flag (the yielded callable reads it); a second SIGINT raises.

    Signal handlers belong to the main thread: elsewhere (a Ray task's thread, a Tune actor) the
    block changes nothing and the flag stays unset.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise ImmediateInterrupt
        requested.set()
        print("rlrun: stopping after this iteration (Ctrl-C again to stop now, without a final checkpoint)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)

"""`callbacks=[pkg.module:Class, ...]`: import the classes, check them once, build the instances of a process.

Every check happens when the run starts (`check_callbacks` in `AlgorithmConfig.validate`), so a typo, a class
that is not a Callback or a hook that cannot take rlrun's arguments is one line before anything runs, never
an error in a Ray actor an hour in.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from rlrun.callbacks.callback import HOOK_ARGUMENTS, Callback, overrides
from rlrun.config.errors import ConfigError
from rlrun.config.imports import import_class

KEY = "callbacks"


def build_callback(path: str) -> Callback:
    """An instance of the Callback subclass `path` names, its overridden hooks checked against the arguments
    rlrun passes."""
    cls = import_class(path, KEY, Callback)
    try:
        callback = cls()
    except Exception as e:
        raise ConfigError(f"{KEY}: {path} cannot be built without arguments ({type(e).__name__}: {e}); "
                          "a Callback is built as Class()") from None
    for hook, arguments in HOOK_ARGUMENTS.items():
        if not overrides(callback, hook):
            continue
        try:
            inspect.signature(getattr(callback, hook)).bind(**dict.fromkeys(arguments))
        except TypeError as e:
            raise ConfigError(f"{KEY}: {path}.{hook} cannot take rlrun's keyword arguments ({e}); define it as "
                              f"{hook}(self, *, {', '.join(arguments)}, **kwargs)") from None
    return callback


def check_callbacks(paths: Sequence[str]) -> None:
    """Raise ConfigError for the first entry of `callbacks` that cannot be used."""
    if isinstance(paths, str) or not isinstance(paths, Sequence):
        raise ConfigError(f"{KEY} must be a list of pkg.module:Class (got {paths!r})")
    for path in paths:
        build_callback(path)


def build_callbacks(paths: Sequence[str]) -> list[Callback]:
    """One instance of each class, in this process (the driver, an env runner, a Ray actor)."""
    return [build_callback(path) for path in paths]

"""`pkg.module:Class` values of config keys (algo.learner_class, model.encoder, model.module_class, ...).

One importer, so every key that names a user's class accepts the same form and fails the same way: one line
naming the key, the value and what is wrong, never an ImportError traceback from deep inside a run.
"""

from __future__ import annotations

import importlib
from typing import Any

from rlrun.config.errors import ConfigError


def import_class(path: Any, key: str, base: type | None = None) -> type:
    """The class `path` (`pkg.module:ClassName`) names, a subclass of `base` if given; ConfigError otherwise."""
    module_name, sep, attr = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{key} must look like pkg.module:ClassName (got {path!r})")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{key} {path!r} cannot be imported: {e}") from None
    if not isinstance(cls, type):
        raise ConfigError(f"{key} {path!r} is not a class")
    if base is not None and not issubclass(cls, base):
        raise ConfigError(f"{key} {path!r} is not a {base.__name__} subclass ({base.__module__}.{base.__name__})")
    return cls

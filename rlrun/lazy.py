"""Package attributes imported on first use (PEP 562).

A package's `__init__` that imported its modules would make every module in it as heavy as the heaviest:
`rlrun` reads each algorithm's `schema` module at every start-up, while its learner (torch) matters only
to a run. Such a package names where each attribute lives and imports it when first asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, exports: Mapping[str, str], name: str) -> Any:
    """A package `__getattr__`'s answer: `name` from the module `exports[name]`, imported now."""
    if name not in exports:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(exports[name]), name)

"""How to install one of rlrun's optional extras, for the errors that need one.

rlrun is installed from a clone, not from a package index, so `pip install 'rlrun[mlflow]'`
would fail: a hint names the extra's own packages (read from the installed package's metadata,
so it cannot drift from pyproject.toml) and the extra as a clone installs it.
"""

from __future__ import annotations

import importlib.metadata
import re


def install_hint(extra: str) -> str:
    """`pip install 'mlflow<3.17,>=2.10'` (rlrun's `mlflow` extra: `pip install '.[mlflow]'` in rlrun's clone)."""
    packages = [requirement.split(";")[0].strip() for requirement in _requirements()
                if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", requirement)]
    clone = f"pip install '.[{extra}]' in rlrun's clone"
    if not packages:
        return clone
    return f"pip install {' '.join(repr(p) for p in packages)} (rlrun's '{extra}' extra: {clone})"


def _requirements() -> list[str]:
    try:
        return importlib.metadata.requires("rlrun") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return []

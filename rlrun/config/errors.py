"""The error type for user mistakes in a config: one line, shown without a traceback."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config value that is out of range, inconsistent, or names something that does not exist.

    The message names the YAML key, the value and what is allowed, e.g.
    `learners.num must be >= 0 (got -1)`; the CLI prints it as one line and exits 2.
    """


def check(ok: bool, message: str, value: Any) -> None:
    """Raise `ConfigError('<message> (got <value>)')` unless `ok`."""
    if not ok:
        raise ConfigError(f"{message} (got {value!r})")

"""The key reference the docs site shows: one Markdown table per config section, built from the typed schemas.

The algorithm pages and the configuration page do not list keys by hand: `docs/hooks/generated_tables.py`
replaces a `<!-- rlrun:keys <section> -->` line with `keys_table(<section>)` at build time, so a key added to a
schema, a changed default or a changed range shows up on the next `make docs` and cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from rlrun.config.errors import ConfigError
from rlrun.config.fields import field_doc, field_range, field_type, is_optional, nested_schema, schema_hints
from rlrun.config.schema import GROUP_SCHEMAS, LOGGER_SCHEMAS, RunSchema, registered_algorithm_schemas


def section_schema(section: str) -> tuple[type, type | None]:
    """`algo=ppo`, `logger=mlflow`, a group (`env_runners`) or a top-level section (`stop`) -> (its schema, the
    schema whose keys to leave out: a tracker's table shows only the keys it adds to the logger group's)."""
    group, _, option = section.partition("=")
    parent, _, child = group.rpartition(".")
    if parent and not option:  # a nested section of another (`env.atari`)
        nested = nested_schema(schema_hints(section_schema(parent)[0]).get(child))
        if nested is None:
            raise ConfigError(f"no config section {section!r}: {parent} has no nested section {child!r}")
        return nested, None
    if group == "algo" and option in registered_algorithm_schemas():
        return registered_algorithm_schemas()[option], None
    if group == "logger" and option in LOGGER_SCHEMAS:
        return LOGGER_SCHEMAS[option], GROUP_SCHEMAS["logger"]
    if not option and group in GROUP_SCHEMAS:
        return GROUP_SCHEMAS[group], None
    nested = nested_schema(schema_hints(RunSchema).get(group)) if not option else None
    if nested is not None:
        return nested, None
    raise ConfigError(f"no config section {section!r}; sections: algo=<name>, logger=<name>, "
                      f"{', '.join(sorted(GROUP_SCHEMAS))} or a top-level section of RunSchema")


def keys_table(section: str) -> str:
    """The Markdown table of a section's keys: key, type, default, allowed values, what it does."""
    schema, beside = section_schema(section)
    prefix = section.partition("=")[0]
    left_out = {f.name for f in dataclasses.fields(beside)} if beside else set()
    rows = ["| key | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    rows += [_row(name, f, hint) for name, f, hint in _fields(schema, prefix, left_out)]
    return "\n".join(rows)


def _fields(schema: type, prefix: str, left_out: set[str]) -> list[tuple[str, dataclasses.Field, Any]]:
    """(dotted key, field, type hint) of every documented field; nested dataclasses flattened, `name` left out
    (it is the option's own name, picked with `group=option`)."""
    hints = schema_hints(schema)
    out: list[tuple[str, dataclasses.Field, Any]] = []
    for f in dataclasses.fields(schema):
        if f.name == "name" or f.name in left_out:
            continue
        dotted = f"{prefix}.{f.name}"
        nested = nested_schema(hints[f.name])
        if nested is not None:
            if is_optional(hints[f.name]):  # a section that may be null has a row of its own: null turns it off
                out.append((dotted, f, hints[f.name]))
            out += _fields(nested, dotted, set())
        else:
            out.append((dotted, f, hints[f.name]))
    return out


def _row(key: str, f: dataclasses.Field, hint: Any) -> str:
    cells = [f"`{key}`", field_type(f, hint), f"`{_default(f)}`", field_range(f, is_optional(hint)), field_doc(f)]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _default(f: dataclasses.Field) -> str:
    """The default as a user writes it on the command line (YAML: null, true, [64, 64])."""
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    return _yaml(value)


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)

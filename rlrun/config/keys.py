"""Every key of a composed config must be one the schemas define.

Hydra refuses a misspelled key unless it is added with `+` or `++` -- and its
own error tells users to do exactly that -- after which OmegaConf accepts any
name and rlrun would ignore it: `+stop.timestep=500` would run a million steps.
`check_known_keys` walks the composed config against the typed schemas and
refuses any key they do not define, naming the closest valid ones. Only
mappings typed `dict[...]` in a schema (`env.env_config`,
`multi_agent.policy_mapping`) are free-form: their keys are the user's.

Because those mappings are free-form, `free_form_overrides` lets a command line
set them without Hydra's `+`/`++` (`env.env_config={N: 3}`), as a user expects.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig

from rlrun.config.errors import ConfigError
from rlrun.config.fields import is_optional, nested_schema, schema_hints
from rlrun.config.schema import registered_algorithm_schemas

# A key may be matched as a typo of a valid one at this similarity (difflib's ratio) or above.
_CLOSE_MATCH = 0.75


def check_known_keys(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key of `cfg` that no schema defines, and the closest valid keys."""
    for key in unknown_keys(cfg):
        raise ConfigError(unknown_key_message(key, cfg))


def unknown_keys(cfg: Mapping[str, Any]) -> list[str]:
    """The dotted keys of `cfg` that no schema defines (a key under one of them is not listed again)."""
    return list(_unknown_keys(cfg, _run_schemas(cfg), ""))


def unknown_key_message(key: str, cfg: Mapping[str, Any]) -> str:
    """`unknown key stop.timestep; did you mean stop.timesteps?`, or the keys its section has."""
    valid = sorted(valid_keys(cfg))
    parts = key.split(".")
    if key in valid:
        # `cfg` names no algorithm (a preset picks it: `experiment=pong_ppo`), and some algorithm has the key.
        owners = [name for name in registered_algorithm_schemas() if key in valid_keys({"algo": {"name": name}})]
        return f"unknown key {key} for this run's algorithm; it is a key of algo={', algo='.join(owners)}"
    # Name the first part that does not exist: in `algo.foo.bar`, `algo.foo`.
    key = next(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) not in valid)
    section, _, _ = key.rpartition(".")
    prefix = f"{section}." if section else ""
    siblings = sorted({k[len(prefix):].split(".")[0] for k in valid if k.startswith(prefix)})
    # A typo of a key beside it first (`stop.timestep`), else of one elsewhere (`evaluation.episodes` for
    # `evaluation.episode`), never of a section the key sits in (`algo.replay_buffer.size` is no typo of
    # `algo.replay_buffer`).
    # Siblings are compared by their own name: the section they share would make any two look alike.
    close = difflib.get_close_matches(key[len(prefix):], siblings, n=1, cutoff=_CLOSE_MATCH)
    if close:
        return f"unknown key {key}; did you mean {prefix}{close[0]}?"
    ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
    elsewhere = [k for k in valid if k not in ancestors and k.rpartition(".")[0] != section]
    close = difflib.get_close_matches(key, elsewhere, n=1, cutoff=_CLOSE_MATCH)
    if close:
        return f"unknown key {key}; did you mean {close[0]}?"
    where = f"{section} has" if section else "the top-level keys are"
    return f"unknown key {key}; {where} {', '.join(siblings)}"


def null_section_message(argv: list[str]) -> str | None:
    """OmegaConf cannot set a key inside a section that is null (`env.atari.frame_stack=2` where `env.atari` is
    null) and fails with a bare AssertionError or ValueError: name the override and how to turn the section on
    (its doc says it). None when no override of `argv` sets a key of a section that may be null."""
    nullable = {path: field_doc for path, hint, field_doc in _nullable_sections()}
    for arg in argv:
        key = _plain_override_key(arg.lstrip("+")) if arg.startswith("+") else _plain_override_key(arg)
        section = next((s for s in nullable if key == s or key.startswith(f"{s}.")), None)
        if section is not None:
            return f"cannot set {key}: {section} is null in this config ({section}: {nullable[section]})"
    return None


def _nullable_sections() -> list[tuple[str, Any, str]]:
    """(dotted path, type, doc) of the nested sections typed `Section | None` (env.atari)."""
    from rlrun.config.schema import GROUP_SCHEMAS, RunSchema

    found = []
    for root, schema in [*GROUP_SCHEMAS.items(), ("", RunSchema)]:
        for f in dataclasses.fields(schema):
            hint = schema_hints(schema)[f.name]
            if nested_schema(hint) is not None and is_optional(hint):
                found.append((f"{root}.{f.name}" if root else f.name, hint, f.metadata.get("doc", "")))
    return found


def valid_keys(cfg: Mapping[str, Any]) -> set[str]:
    """Every dotted key the schemas define for `cfg`'s algorithm and logger (every algorithm's keys when
    `cfg` names none, as when Hydra refuses an override before the config is composed)."""
    algorithms = registered_algorithm_schemas()
    algo = cfg.get("algo", {}).get("name")
    logger = {"name": cfg.get("logger", {}).get("name")}
    names = [algo] if algo in algorithms else list(algorithms)
    keys: set[str] = set()
    for name in names:
        keys |= {path for path, _ in _schema_fields(_run_schemas({"algo": {"name": name}, "logger": logger}), "")}
    return keys


def free_form_overrides(argv: list[str]) -> list[str]:
    """`env.env_config={N: 3}` -> `++env.env_config={N: 3}`: Hydra would refuse the new key `N`, but the
    keys of a free-form mapping are the user's. Other arguments are returned unchanged."""
    roots = _free_form_roots()
    return [f"++{arg}" if _plain_override_key(arg) in roots or
            any(_plain_override_key(arg).startswith(f"{root}.") for root in roots) else arg for arg in argv]


def override_key(arg: str) -> str:
    """`stop.iterations` of `stop.iterations=5`, `+stop.iterations=5` or `~stop.iterations`."""
    return arg.split("=", 1)[0].lstrip("~+").split("@", 1)[0]


def _plain_override_key(arg: str) -> str:
    """The key of a `key=value` override without a `+`, `++` or `~` prefix; "" for anything else."""
    if arg.startswith(("-", "+", "~")) or "=" not in arg:
        return ""
    return arg.split("=", 1)[0]


@functools.cache
def _free_form_roots() -> frozenset[str]:
    """Dotted paths of the mappings typed `dict[...]` in the run's schemas (the same for every algorithm)."""
    return frozenset(path for path, hint in _schema_fields(_run_schemas({}), "") if _is_free_form(hint))


def _run_schemas(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of each top-level key: RunSchema's fields, with each group's option schema in place of `Any`."""
    from rlrun.config.schema import GROUP_SCHEMAS, LOGGER_SCHEMAS, LoggerSchema, RunSchema

    schemas: dict[str, Any] = dict(schema_hints(RunSchema))
    schemas.update(GROUP_SCHEMAS)
    schemas["logger"] = LOGGER_SCHEMAS.get(cfg.get("logger", {}).get("name"), LoggerSchema)
    algo = cfg.get("algo", {}).get("name")
    # An unknown algorithm is reported by the registry; its keys cannot be checked before that.
    schemas["algo"] = registered_algorithm_schemas().get(algo, Any)
    return schemas


def _unknown_keys(node: Any, schema: Any, prefix: str) -> Iterator[str]:
    """Dotted keys under `node` that `schema` (a dataclass, or a mapping key -> type) does not define."""
    fields = schema_hints(schema) if dataclasses.is_dataclass(schema) else schema
    for key in node:
        path = f"{prefix}{key}"
        if key not in fields:
            yield path
            continue
        hint, value = fields[key], node[key]
        nested = nested_schema(hint)
        if isinstance(value, Mapping) and nested is not None:
            yield from _unknown_keys(value, nested, f"{path}.")


def _schema_fields(fields: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, type) of every key under `fields`, nested dataclasses included."""
    for key, hint in fields.items():
        yield f"{prefix}{key}", hint
        nested = nested_schema(hint)
        if nested is not None:
            yield from _schema_fields(schema_hints(nested), f"{prefix}{key}.")


def _is_free_form(hint: Any) -> bool:
    """A `dict[...]` field: a mapping whose keys the user chooses (env_config, policy_mapping)."""
    return hint is dict or typing.get_origin(hint) is dict

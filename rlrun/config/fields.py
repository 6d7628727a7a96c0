"""Schema fields that carry their own description and allowed range.

A config key is declared once, in its schema dataclass:

    lambda_: float = key(0.95, "GAE lambda: ...", bounds="in [0, 1]")

The docs site reads the description, type and range from the field (`rlrun.config.reference`), and
`check_fields` enforces that same range on a run's values, so the range a page shows is the range the
code checks: there is no second, hand-written copy of it to drift. Checks that relate several keys
(`minibatch_size <= train_batch_size`) or parse a structure (schedules) stay hand-written in the
`validate` methods; only one-key ranges and choices live here.

The messages are those every `ConfigError` uses: the YAML key a user types, what is allowed, the value,
e.g. `algo.lambda_ must be in [0, 1] (got 1.5)`.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from rlrun.config.errors import ConfigError

MISSING: Any = dataclasses.MISSING

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# `>= 0`, `> 0`, `<= 1`, `< 1`, or an interval `in [0, 1]` whose ends are `[`/`(` and `]`/`)`.
_BOUNDS = re.compile(
    rf"^\s*(?:(?P<op>>=|>|<=|<)\s*(?P<value>{_NUMBER})"
    rf"|in\s*(?P<open>[\[(])\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*(?P<close>[\])]))\s*$"
)


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A parsed bounds string: the numeric range a value must lie in, and the text that names it."""

    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True
    # The canonical form (`in [0, 1]`, `> 0`), written into messages and the docs exactly as the key declares it.
    text: str = ""

    def __contains__(self, value: float) -> bool:
        if self.low is not None and not (value >= self.low if self.low_inclusive else value > self.low):
            return False
        return self.high is None or (value <= self.high if self.high_inclusive else value < self.high)


def parse_bounds(text: str) -> Bounds:
    """`">= 0"`, `"> 0"`, `"<= 1"`, `"< 1"`, `"in [0, 1]"`, `"in (0, 1]"`, `"in [0, 1)"` -> Bounds.

    A malformed string raises ValueError when the schema module is imported, so a typo in a schema cannot
    silently leave a key unchecked.
    """
    m = _BOUNDS.match(text)
    if m is None:
        raise ValueError(f"bounds {text!r}: expected '>= x', '> x', '<= x', '< x' or 'in [a, b]' with [ or ( "
                         "and ] or )")
    if m["op"]:
        op, value = m["op"], float(m["value"])
        lower = op.startswith(">")
        inclusive = op.endswith("=")
        text = f"{op} {m['value']}"
        if lower:
            return Bounds(low=value, low_inclusive=inclusive, text=text)
        return Bounds(high=value, high_inclusive=inclusive, text=text)
    low, high = float(m["low"]), float(m["high"])
    if low > high:
        raise ValueError(f"bounds {text!r}: the lower end is above the upper end")
    return Bounds(low=low, low_inclusive=m["open"] == "[", high=high, high_inclusive=m["close"] == "]",
                  text=f"in {m['open']}{m['low']}, {m['high']}{m['close']}")


def key(
    default: Any = MISSING,
    doc: str = "",
    *,
    bounds: str | None = None,
    choices: Sequence[Any] | None = None,
    integer: bool = False,
    note: str = "",
    default_factory: Any = MISSING,
) -> Any:
    """A `dataclasses.field` for a config key, its metadata holding what the docs show and the checks use.

    - `doc`: one line saying what the key does, in the units a user thinks in (env steps, rows) and what
      null means if the key may be null;
    - `bounds`: the numeric range (grammar in `parse_bounds`); `choices`: the allowed values. A key whose
      type admits None (`float | None`) may also be null;
    - `integer`: also refuse a value that is not an integer, for keys the Python builder could get as
      1.5 where only whole counts make sense; the message then says `must be an integer >= 1`;
    - `note`: a gloss that only the error message adds after the range, e.g. `(0 = final only)`.

    Typed `Any` (as `dataclasses.field` is to a type checker) so that `lr: float = key(...)` type-checks;
    the value is a `dataclasses.Field`, which OmegaConf's structured configs read like any other.
    """
    if bounds is not None and choices is not None:
        raise ValueError("a key has bounds or choices, not both")
    metadata = {
        "doc": doc,
        "bounds": parse_bounds(bounds) if bounds is not None else None,
        "choices": tuple(choices) if choices is not None else None,
        "integer": integer,
        "note": note,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def override(base: type, name: str, default: Any = MISSING, doc: str | None = None, *,
             default_factory: Any = MISSING) -> Any:
    """The key `name` of the schema `base` with a new default, for a subclass schema (`lr` of DQN).

    The bounds, choices and note stay the base's: a subclass key means the same thing within the same range,
    and redeclaring the range in every subclass would let one copy drift or be forgotten, leaving the key
    unchecked there. `doc` replaces the description where the algorithm gives the key a narrower meaning
    (`train_batch_size`: rows drawn from the replay buffer).
    """
    base_field = next((f for f in dataclasses.fields(base) if f.name == name), None)
    if base_field is None:
        raise ValueError(f"{base.__name__} has no key {name!r} to override")
    metadata = dict(base_field.metadata)
    if doc is not None:
        metadata["doc"] = doc
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_doc(f: dataclasses.Field) -> str:
    """The key's one-line description ("" for a field not declared with `key`)."""
    return f.metadata.get("doc", "")


def field_range(f: dataclasses.Field, optional: bool) -> str:
    """What the key allows, as the messages say it: `in [0, 1]`, `> 0`, `>= 1 or null`,
    `one of ['uniform', 'prioritized']`; "" when the field declares no range (any value of its type)."""
    bounds: Bounds | None = f.metadata.get("bounds")
    choices: tuple[Any, ...] | None = f.metadata.get("choices")
    if bounds is not None:
        text = bounds.text
    elif choices is not None:
        text = f"one of {list(choices)}"
    else:
        return ""
    return f"{text} or null" if optional else text


def is_optional(hint: Any) -> bool:
    """Whether a type admits None: `int | None`, `Optional[int]` (also as the string a postponed annotation is)."""
    if isinstance(hint, str):
        return "None" in _split_union(hint) or hint.startswith("Optional[")
    return type(None) in typing.get_args(hint) if _is_union(hint) else hint is type(None)


def field_type(f: dataclasses.Field, hint: Any = None) -> str:
    """A readable type of the key: `float`, `int | null`, `list | null`, `str`, `bool`, `dict`, `any`.

    `hint` is the field's resolved type (`typing.get_type_hints(schema)[name]`); without it the field's own
    annotation is used, which in a module with postponed annotations is a string and is read as written.
    """
    return _type_text(f.type if hint is None else hint)


def check_fields(schema: type, value_of: Callable[[str], Any], section: str) -> None:
    """Check every key of `schema` that declares bounds or choices; raise ConfigError for the first that fails.

    `value_of(name)` gives the value of the field `name` wherever the values are kept (a builder's attributes,
    a composed DictConfig, a dict); it is called only for constrained keys and nested sections. A nested
    schema (`algo.replay_buffer`) is checked in turn, its values read from whatever `value_of` gives for it
    (a mapping or an object), under the section `<section>.<name>`. `section` "" checks top-level keys.
    """
    hints = schema_hints(schema)
    for f in dataclasses.fields(schema):
        path = f"{section}.{f.name}" if section else f.name
        hint = hints[f.name]
        nested = nested_schema(hint)
        if nested is not None:
            value = value_of(f.name)
            if value is not None:
                check_fields(nested, functools.partial(_member, value), path)
            continue
        if f.metadata.get("bounds") is None and f.metadata.get("choices") is None:
            continue
        value = value_of(f.name)
        optional = is_optional(hint)
        if not (optional and value is None) and not _allowed(f, value):
            integer = "an integer " if f.metadata.get("integer") else ""
            note = f" ({f.metadata['note']})" if f.metadata.get("note") else ""
            raise ConfigError(f"{path} must be {integer}{field_range(f, optional)}{note} (got {value!r})")


def _allowed(f: dataclasses.Field, value: Any) -> bool:
    """Whether a non-null value meets the field's integer flag, bounds and choices."""
    choices = f.metadata.get("choices")
    if choices is not None:
        return value in choices
    # A bool is no number here, although Python's True == 1: `num_epochs: true` is a mistake, not 1 epoch.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if f.metadata.get("integer") and not isinstance(value, numbers.Integral):
        return False
    return value in f.metadata["bounds"]


def _member(container: Any, name: str) -> Any:
    """`container[name]` for a mapping (a builder's dict, a DictConfig), else the attribute (a dataclass)."""
    return container[name] if isinstance(container, Mapping) else getattr(container, name)


@functools.cache
def schema_hints(schema: type) -> dict[str, Any]:
    """Field name -> resolved type of a schema dataclass (the schemas use postponed annotations, so `f.type`
    is a string); every walk over the schemas (the range checks, the unknown-key check, the docs) reads these."""
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in dataclasses.fields(schema)}


def nested_schema(hint: Any) -> type | None:
    """The schema dataclass a field nests (`ReplayBufferSchema`, also inside `... | None`), else None."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    if _is_union(hint):
        return next((a for a in typing.get_args(hint) if isinstance(a, type) and dataclasses.is_dataclass(a)), None)
    return None


def _is_union(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union


# How a type reads in the docs: YAML's words (null, list, dict) rather than Python's.
_TYPE_NAMES = {"NoneType": "null", "None": "null", "Any": "any", "List": "list", "Dict": "dict", "Sequence": "list",
               "Mapping": "dict"}


def _type_text(hint: Any) -> str:
    if isinstance(hint, str):
        parts = _split_union(hint)
        if len(parts) == 1 and hint.startswith("Optional[") and hint.endswith("]"):
            parts = [*_split_union(hint[len("Optional["):-1]), "None"]
        names = [_TYPE_NAMES.get(p.split("[")[0].strip(), p.split("[")[0].strip()) for p in parts]
    elif _is_union(hint):
        names = [_type_text(a) for a in typing.get_args(hint)]
    else:
        names = [_single_type_text(hint)]
    # null last, as in `int | null`.
    return " | ".join(sorted(dict.fromkeys(names), key=lambda n: n == "null"))


def _single_type_text(hint: Any) -> str:
    if hint is Any:
        return "any"
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type):
        if issubclass(origin, Enum):  # a str Enum: YAML writes the value's name
            return "str"
        if dataclasses.is_dataclass(origin):
            return "section"
        if issubclass(origin, Mapping):
            return "dict"
        if issubclass(origin, (list, tuple, Sequence)) and not issubclass(origin, str):
            return "list"
        return _TYPE_NAMES.get(origin.__name__, origin.__name__)
    return str(hint)


def _split_union(text: str) -> list[str]:
    """`"dict[str, int | None] | None"` -> `["dict[str, int | None]", "None"]`: `|` outside brackets only."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts

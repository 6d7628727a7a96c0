"""EnvSpec: everything needed to build a run's env, and nothing else.

`AlgorithmConfig.env_spec()` builds one from the `env.*` keys; `make_env` and `make_vector_env`
(rlrun/env/env_creation.py) build envs from it. Env code reads only this object, never the whole
algorithm config, so an env can be built (in a Ray actor, in `rlrun-eval`, in a test) from the spec alone.

It is plain, picklable data: an id, the constructor's keyword arguments, an optional TimeLimit, the
wrappers to apply (`WrapperSpec`), the backend that vectorizes the copies, and the Atari preprocessing
(`AtariSpec`) or None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from rlrun.config.errors import ConfigError
from rlrun.config.imports import import_class

# How an env runner vectorizes its env copies (the `env.backend` key's choices; its schema repeats them).
BACKENDS = ("sync", "async", "envpool")
# What an `env.wrappers` item may be, as the error for any other says it.
WRAPPER_FORMS = ("a class name of gymnasium.wrappers (FrameStackObservation)", "pkg.module:Class",
                 "{name: <one of those>, kwargs: {...}}")


class EnvError(ValueError):
    """An env that cannot be resolved or built as its spec asks; the message is one line naming the key."""


@dataclasses.dataclass(frozen=True)
class AtariSpec:
    """The Atari preprocessing (`env.atari.*`; the docs of each key are in rlrun/config/schema.py AtariSchema).

    The defaults are AtariSchema's (tests/test_atari.py keeps the two equal): Mnih et al. (2015) with
    Machado et al.'s (2018) no-op starts, as CleanRL and SB3's AtariWrapper, without sticky actions.
    """

    noop_max: int = 30
    frame_skip: int = 4
    screen_size: int = 84
    grayscale: bool = True
    frame_stack: int = 4
    terminal_on_life_loss: bool = True
    clip_rewards: bool = True
    fire_reset: bool = True
    repeat_action_probability: float = 0.0

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        """(channels, height, width): frame_stack grey frames, or 3 x frame_stack channels of RGB ones."""
        channels = self.frame_stack * (1 if self.grayscale else 3)
        return channels, self.screen_size, self.screen_size


@dataclasses.dataclass(frozen=True)
class WrapperSpec:
    """One gymnasium wrapper: a class name of `gymnasium.wrappers` or `pkg.module:Class`, and its kwargs."""

    name: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def resolve(self, where: str = "env.wrappers") -> type:
        """The wrapper class; EnvError (naming the key `where`) if it cannot be imported or is no gymnasium
        wrapper."""
        import gymnasium as gym

        if ":" in self.name:
            try:
                # The importer of every key that names a user's class; "<key>:" as this class's other messages.
                cls = import_class(self.name, f"{where}:")
            except ConfigError as e:
                raise EnvError(str(e)) from None
        else:
            cls = getattr(gym.wrappers, self.name, None)
            if cls is None:
                import difflib

                names = [n for n in dir(gym.wrappers) if isinstance(getattr(gym.wrappers, n), type)]
                close = difflib.get_close_matches(self.name, names, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise EnvError(f"{where}: gymnasium.wrappers has no class {self.name!r}; {hint}name one of its "
                               "classes or give pkg.module:Class")
        if not (isinstance(cls, type) and issubclass(cls, gym.Wrapper)):
            raise EnvError(f"{where}: {self.name!r} is not a gymnasium.Wrapper subclass (vector wrappers and "
                           "functions are not applied to each env copy)")
        return cls


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """The env of a run: what `make_env` / `make_vector_env` build, and how."""

    id: str
    env_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    max_episode_steps: int | None = None
    wrappers: tuple[WrapperSpec, ...] = ()
    backend: str = "sync"
    atari: AtariSpec | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise EnvError(f"env.backend must be one of {list(BACKENDS)} (got {self.backend!r})")

    def replace(self, **changes: Any) -> EnvSpec:
        """A copy with `changes` (e.g. `env_config=` with a render mode for filming)."""
        return dataclasses.replace(self, **changes)


def as_env_spec(env: EnvSpec | str) -> EnvSpec:
    """An EnvSpec, or a spec of an env id with every other field at its default."""
    return env if isinstance(env, EnvSpec) else EnvSpec(id=env)


def wrapper_specs(items: Sequence[Any] | None) -> tuple[WrapperSpec, ...]:
    """The `env.wrappers` list as WrapperSpecs; EnvError naming the first item of another form.

    An item is a string (a `gymnasium.wrappers` class name or `pkg.module:Class`) or a mapping with `name` and
    optionally `kwargs` (a mapping; its lists become tuples, since YAML has none and wrappers such as
    ResizeObservation insist on them). The classes are not imported here (see `WrapperSpec.resolve`).
    """
    if items is None:
        return ()
    if isinstance(items, (str, Mapping)) or not isinstance(items, Sequence):
        raise EnvError(f"env.wrappers must be a list of wrappers, each {', '.join(WRAPPER_FORMS)} (got {items!r})")
    return tuple(_wrapper_spec(i, item) for i, item in enumerate(items))


def _wrapper_spec(index: int, item: Any) -> WrapperSpec:
    if isinstance(item, WrapperSpec):
        return item
    if isinstance(item, str) and item:
        return WrapperSpec(item)
    if (isinstance(item, Mapping) and set(item) in ({"name"}, {"name", "kwargs"}) and isinstance(item["name"], str)
            and item["name"] and isinstance(item.get("kwargs") or {}, Mapping)):
        return WrapperSpec(item["name"], {k: _tuples(v) for k, v in (item.get("kwargs") or {}).items()})
    raise EnvError(f"env.wrappers[{index}] must be {', '.join(WRAPPER_FORMS[:-1])} or {WRAPPER_FORMS[-1]} "
                   f"(got {item!r})")


def _tuples(value: Any) -> Any:
    """YAML lists as tuples, as wrappers' shape arguments want them (`ResizeObservation(shape=(64, 64))`)."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    return value

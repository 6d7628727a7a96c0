"""Schema fields declare their description and range once (`rlrun.config.fields.key`): the docs show them and
`check_fields` enforces them, with the messages every ConfigError has."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import hydra
import pytest

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.config.errors import ConfigError
from rlrun.config.fields import (
    check_fields,
    field_doc,
    field_range,
    field_type,
    is_optional,
    key,
    override,
    parse_bounds,
)
from rlrun.config.schema import (
    GROUP_SCHEMAS,
    LOGGER_SCHEMAS,
    ConsoleMode,
    EnvRunnersSchema,
    ModelSchema,
    RunSchema,
    register_schemas,
)
from rlrun.config.validation import validate_run


@dataclass
class Inner:
    beta: float = key(0.4, "An inner key.", bounds="in [0, 1]")
    kind: str = key("uniform", "A choice.", choices=("uniform", "prioritized"))


@dataclass
class Toy:
    lambda_: float = key(0.95, "A fraction.", bounds="in [0, 1]")
    grad_clip: float | None = key(0.5, "A positive number or null.", bounds="> 0")
    n_step: int = key(1, "A count.", bounds=">= 1", integer=True)
    tau: float = key(1.0, "A half-open interval.", bounds="in (0, 1]", note="1 = hard copy")
    hiddens: list[int] | None = key(None, "No range.")
    inner: Inner = key(doc="A nested section.", default_factory=Inner)


def fields_of(schema: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(schema)}


def check(schema: type = Toy, **values: Any) -> None:
    """check_fields on the defaults of `schema` with `values` replacing some, read from a plain dict."""
    config = {f.name: getattr(schema(), f.name) for f in dataclasses.fields(schema)} | values
    check_fields(schema, config.__getitem__, "algo")


# -- the bounds grammar ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "inside", "outside"), [
    (">= 0", [0, 0.0, 5], [-1e-9, -3]),
    ("> 0", [1e-9, 7], [0, -1]),
    ("<= 1", [1, -5], [1.0001]),
    ("< 1", [0.999], [1]),
    ("in [0, 1]", [0, 0.5, 1], [-0.1, 1.1]),
    ("in (0, 1]", [1e-9, 1], [0, 1.5]),
    ("in [0, 1)", [0, 0.999], [1, -1]),
    ("in (0, 1)", [0.5], [0, 1]),
    ("in [-1e-3, 2.5]", [-0.001, 2.5], [-0.01, 3]),
])
def test_bounds_parse_and_contain(text: str, inside: list[float], outside: list[float]):
    bounds = parse_bounds(text)
    assert bounds.text == text
    assert all(v in bounds for v in inside)
    assert not any(v in bounds for v in outside)


def test_bounds_text_is_canonical():
    assert parse_bounds("  in[0,1) ").text == "in [0, 1)"
    assert parse_bounds(">=1").text == ">= 1"


@pytest.mark.parametrize("text", ["0 <= x", ">= a", "in [1, 0]", "in {0, 1}", "between 0 and 1", "", "=> 0"])
def test_malformed_bounds_fail_when_the_schema_is_defined(text: str):
    with pytest.raises(ValueError):
        key(0.0, "doc", bounds=text)


def test_a_key_has_bounds_or_choices_not_both():
    with pytest.raises(ValueError, match="not both"):
        key("a", "doc", bounds="> 0", choices=("a",))


# -- the text the docs show ----------------------------------------------------------------


def test_field_range_says_it_as_the_messages_do():
    toy, inner = fields_of(Toy), fields_of(Inner)
    assert field_range(toy["lambda_"], optional=False) == "in [0, 1]"
    assert field_range(toy["grad_clip"], optional=False) == "> 0"
    assert field_range(toy["n_step"], optional=True) == ">= 1 or null"
    assert field_range(inner["kind"], optional=False) == "one of ['uniform', 'prioritized']"
    assert field_range(toy["hiddens"], optional=True) == ""


def test_field_doc_and_type():
    hints = typing.get_type_hints(Toy)
    toy = fields_of(Toy)
    assert field_doc(toy["tau"]) == "A half-open interval."
    assert field_doc(dataclasses.field(default=1)) == ""
    expected = {"lambda_": "float", "grad_clip": "float | null", "n_step": "int", "hiddens": "list | null",
                "inner": "section"}
    for name, text in expected.items():
        assert field_type(toy[name], hints[name]) == text, name
        # Without the resolved hint the annotation is read as written (postponed annotations: a string).
        if name != "inner":
            assert field_type(toy[name]) == text, name
    assert is_optional(hints["grad_clip"]) and is_optional("float | None") and not is_optional(hints["tau"])


def test_field_type_of_the_run_schemas():
    def type_of(schema: type, name: str) -> str:
        return field_type(fields_of(schema)[name], typing.get_type_hints(schema)[name])

    assert type_of(EnvRunnersSchema, "observation_filter") == "str"
    assert type_of(EnvRunnersSchema, "normalize_rewards") == "bool"
    assert type_of(EnvRunnersSchema, "rollout_fragment_length") == "any"
    assert type_of(GROUP_SCHEMAS["env"], "env_config") == "dict"
    assert type_of(GROUP_SCHEMAS["env"], "max_episode_steps") == "int | null"
    assert type_of(GROUP_SCHEMAS["logger"], "console") == "str"
    assert type_of(ModelSchema, "hiddens") == "list | null"


# -- the checks and their messages -------------------------------------------------------------


def test_defaults_pass():
    check()


@pytest.mark.parametrize(("values", "message"), [
    ({"lambda_": 1.5}, "algo.lambda_ must be in [0, 1] (got 1.5)"),
    ({"grad_clip": -1.0}, "algo.grad_clip must be > 0 or null (got -1.0)"),
    ({"n_step": 0}, "algo.n_step must be an integer >= 1 (got 0)"),
    ({"n_step": 2.5}, "algo.n_step must be an integer >= 1 (got 2.5)"),
    ({"tau": 0.0}, "algo.tau must be in (0, 1] (1 = hard copy) (got 0.0)"),
    ({"lambda_": None}, "algo.lambda_ must be in [0, 1] (got None)"),  # the type does not admit null
    ({"lambda_": "high"}, "algo.lambda_ must be in [0, 1] (got 'high')"),
    ({"lambda_": True}, "algo.lambda_ must be in [0, 1] (got True)"),  # a bool is no number here
])
def test_out_of_range_values_raise_one_line(values: dict[str, Any], message: str):
    with pytest.raises(ConfigError) as info:
        check(**values)
    assert str(info.value) == message


def test_null_passes_where_the_type_admits_it():
    check(grad_clip=None)
    check(grad_clip=1e-6, n_step=3, tau=1, lambda_=0)


def test_unconstrained_keys_are_not_read():
    read: list[str] = []

    def value_of(name: str) -> Any:
        read.append(name)
        return getattr(Toy(), name)

    check_fields(Toy, value_of, "algo")
    assert "hiddens" not in read


@pytest.mark.parametrize("container", [dict, Inner])
def test_a_nested_section_is_checked_under_its_own_name(container):
    # A builder keeps a nested section as a dict (OffPolicyConfig.replay_buffer), a dataclass as an object.
    inner = {"beta": 2.0, "kind": "uniform"} if container is dict else Inner(beta=2.0)
    with pytest.raises(ConfigError) as info:
        check(inner=inner)
    assert str(info.value) == "algo.inner.beta must be in [0, 1] (got 2.0)"
    with pytest.raises(ConfigError, match=r"^algo\.inner\.kind must be one of \['uniform', 'prioritized'\] "
                                          r"\(got 'ring'\)$"):
        check(inner={"beta": 0.5, "kind": "ring"})


def test_top_level_keys_have_no_section_prefix():
    with pytest.raises(ConfigError, match=r"^lambda_ must be in \[0, 1\]"):
        check_fields(Toy, {**Toy().__dict__, "lambda_": 2.0}.__getitem__, "")


def test_override_keeps_the_base_range_and_may_narrow_the_doc():
    @dataclass
    class Sub(Toy):
        lambda_: float = override(Toy, "lambda_", 0.5)
        tau: float = override(Toy, "tau", 0.1, "Another meaning.")

    sub = fields_of(Sub)
    assert sub["lambda_"].default == 0.5 and field_doc(sub["lambda_"]) == "A fraction."
    assert field_range(sub["tau"], optional=False) == "in (0, 1]" and field_doc(sub["tau"]) == "Another meaning."
    with pytest.raises(ConfigError, match=r"^algo\.tau must be in \(0, 1\] \(1 = hard copy\) \(got 2\)$"):
        check(Sub, tau=2)
    with pytest.raises(ValueError, match="no key"):
        override(Toy, "lamda", 0.5)


# -- every schema ------------------------------------------------------------------------


def schemas_under(schema: type, name: str) -> list[tuple[str, type]]:
    """(dotted name, schema) of `schema` and of every schema nested in it."""
    hints = typing.get_type_hints(schema)
    found = [(name, schema)]
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[f.name]):
            found += schemas_under(hints[f.name], f"{name}.{f.name}")
    return found


ALL_SCHEMAS = [
    *(pair for algo, schema in algorithm_schemas().items() for pair in schemas_under(schema, f"algo={algo}")),
    *(pair for group, schema in GROUP_SCHEMAS.items() for pair in schemas_under(schema, group)),
    *(pair for name, schema in LOGGER_SCHEMAS.items() for pair in schemas_under(schema, f"logger={name}")),
    *schemas_under(RunSchema, "run"),
]


@pytest.mark.parametrize(("where", "schema"), ALL_SCHEMAS, ids=[where for where, _ in ALL_SCHEMAS])
def test_every_key_has_a_doc(where: str, schema: type):
    undocumented = [f.name for f in dataclasses.fields(schema) if not field_doc(f).strip()]
    assert not undocumented, f"{where}: keys without a doc: {undocumented}"


@pytest.mark.parametrize("algo", sorted(algorithm_schemas()))
def test_an_algorithm_keeps_the_range_of_the_keys_it_inherits(algo: str):
    """A subclass that redeclares a key with `key(...)` instead of `override(...)` and forgets its bounds would
    leave the key unchecked for that algorithm only."""
    schema = algorithm_schemas()[algo]
    for base in schema.__mro__[1:]:
        if not dataclasses.is_dataclass(base):
            continue
        base_fields = fields_of(base)
        for f in dataclasses.fields(schema):
            if f.name in base_fields:
                for meta in ("bounds", "choices", "integer", "note"):
                    assert f.metadata.get(meta) == base_fields[f.name].metadata.get(meta), (algo, f.name, meta)


def test_schema_choices_match_the_implementations():
    """Choices copied into a schema (it must not import torch or the env package) stay those the code has."""
    from rlrun.core.rl_module.catalog import ACTIVATIONS, CNN_DENSE, CNN_FILTERS
    from rlrun.data.replay_buffers import REPLAY_BUFFERS
    from rlrun.env.normalization import OBSERVATION_FILTERS

    assert fields_of(EnvRunnersSchema)["observation_filter"].metadata["choices"] == tuple(OBSERVATION_FILTERS)
    assert fields_of(ModelSchema)["activation"].metadata["choices"] == tuple(sorted(ACTIVATIONS))
    assert set(fields_of(ModelSchema)["cnn"].metadata["choices"]) == set(CNN_DENSE) - {"conv_filters"}
    assert set(CNN_FILTERS) < set(CNN_DENSE)
    buffer = typing.get_type_hints(algorithm_schemas()["dqn"])["replay_buffer"]
    assert fields_of(buffer)["type"].metadata["choices"] == tuple(sorted(REPLAY_BUFFERS))
    assert fields_of(GROUP_SCHEMAS["logger"])["console"].metadata["choices"] == tuple(m.value for m in ConsoleMode)


# -- the run-level sections, checked on the composed config ----------------------------------------


def compose(*overrides: str):
    register_schemas(algorithm_schemas())
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        return hydra.compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize(("override_", "message"), [
    ("stop.timesteps=0", "stop.timesteps must be > 0 or null (got 0)"),
    ("stop.time_s=-1.5", "stop.time_s must be > 0 or null (got -1.5)"),
    ("checkpoint.every_iterations=-1", "checkpoint.every_iterations must be >= 0 (0 = final only) (got -1)"),
    ("checkpoint.keep_last=-2", "checkpoint.keep_last must be >= 0 or null (0/null = keep all) (got -2)"),
    ("evaluation.every_iterations=-1", "evaluation.every_iterations must be >= 0 (0 = at the end only) (got -1)"),
    ("evaluation.episodes=0", "evaluation.episodes must be >= 1 (got 0)"),
    ("logger.smoothing_episodes=0", "logger.smoothing_episodes must be >= 1 (got 0)"),
    ("algo.lr=-1", "algo.lr must be > 0 (got -1.0)"),
])
def test_validate_run_checks_the_schema_ranges(override_: str, message: str):
    with pytest.raises(ConfigError) as info:
        validate_run(compose(override_))
    assert str(info.value) == message


def test_validate_run_accepts_the_defaults_and_null_stop_criteria():
    validate_run(compose())
    validate_run(compose("stop.timesteps=null", "stop.iterations=3", "checkpoint.keep_last=null"))
    validate_run(compose("logger=mlflow"))

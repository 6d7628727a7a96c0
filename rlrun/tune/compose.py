"""A trial's rlrun config: the study's base overrides plus the trial's parameters, as the CLI would compose it.

Hydra's compose reads and merges every config file of the defaults list (~0.1 s), the
largest part of a short trial's set-up: ASHA stops most trials after a few iterations
of ~0.1 s each. So the base is composed once per process and a trial's parameters are
applied to a copy of it exactly as Hydra applies a value override after composing
(`OmegaConf.update(cfg, key, value, merge=True)`, values parsed by Hydra's own
override parser). A parameter that is not a plain value of the base -- a config group
such as `env=acrobot`, which changes what is composed, or a key the base lacks --
composes the whole config instead, so it selects its files or fails with Hydra's own
message, as on the command line; so does a value the key's type refuses.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def compose_config(overrides: list[str]) -> DictConfig:
    """rlrun's config composed from command-line style overrides (Hydra's compose API, no run directory)."""
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    from rlrun.algorithms.registry import algorithm_schemas
    from rlrun.config.schema import register_schemas

    register_schemas(algorithm_schemas())
    GlobalHydra.instance().clear()
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        return hydra.compose(config_name="config", overrides=overrides)


def trial_overrides(params: dict[str, Any]) -> list[str]:
    """A trial's parameters as Hydra overrides (numbers in full precision)."""
    return [f"{key}={json.dumps(value) if isinstance(value, (bool, type(None))) else value}"
            for key, value in params.items()]


def trial_config(base_overrides: list[str], params: dict[str, Any]) -> DictConfig:
    """The config of a trial with `params`: what `compose_config([*base_overrides, *trial_overrides(params)])`
    returns, from the base composed once (a new, independent config each call)."""
    overrides = trial_overrides(params)
    base = base_config(tuple(base_overrides))
    parsed = OverridesParser.create().parse_overrides(overrides)
    if not all(_is_value_override(override, base) for override in parsed):
        return compose_config([*base_overrides, *overrides])
    cfg = copy.deepcopy(base)
    try:
        for override in parsed:
            OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
    except OmegaConfBaseException:  # a value the key's type refuses: fail with Hydra's own message
        return compose_config([*base_overrides, *overrides])
    return cfg


@functools.lru_cache(maxsize=4)
def base_config(base_overrides: tuple[str, ...]) -> DictConfig:
    """The study's base config, composed once per process and shared: read it, never change it (trials get
    copies from `trial_config`)."""
    return compose_config(list(base_overrides))


def _is_value_override(override: Override, base: DictConfig) -> bool:
    """`key=value` on a key that holds a plain value in the base: no group, no `+`/`~`, nothing to compose."""
    if override.package is not None or override.is_add() or override.is_force_add() or override.is_delete():
        return False
    key = override.key_or_group
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig) or leaf not in node:
        return False
    return OmegaConf.is_interpolation(node, leaf) or not OmegaConf.is_config(node[leaf])

"""A study's search space in the Optuna sweeper's syntax, as Ray Tune domains.

    params:
      algo.lr: tag(log, interval(1e-4, 1e-2))   -> tune.loguniform(1e-4, 1e-2)
      algo.gamma: interval(0.95, 0.999)         -> tune.uniform(0.95, 0.999)
      algo.num_epochs: range(4, 12)             -> tune.randint(4, 12)  (stop excluded, as in range)
      algo.minibatch_size: choice(128, 256)     -> tune.choice([128, 256])
      algo.vf_clip_param: 10.0                  -> fixed for every trial

Parsed with Hydra's own override parser, so the presets read exactly like
`hparams_search/*_optuna.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from ray import tune

from rlrun.config.errors import ConfigError


def search_space(params: Mapping[str, str]) -> dict[str, Any]:
    """key -> a Tune domain, or a plain value for a fixed key."""
    parser = OverridesParser.create()
    space = {}
    for key, text in params.items():
        try:
            override = parser.parse_override(f"{key}={text}")
        except Exception as e:  # Hydra's grammar errors
            raise ConfigError(f"hydra.sweeper.params.{key}: cannot parse {text!r}: {e}") from None
        space[key] = _domain(override)
    return space


def _domain(override: Override) -> Any:
    if not override.is_sweep_override():
        return override.value()
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return tune.choice(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)) and value.step == 1:
            return tune.randint(int(value.start), int(value.stop))
        return tune.choice(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, IntervalSweep):
        ints = isinstance(value.start, int) and isinstance(value.end, int)
        log = "log" in value.tags
        if ints:
            return (tune.lograndint if log else tune.randint)(int(value.start), int(value.end))
        return (tune.loguniform if log else tune.uniform)(float(value.start), float(value.end))
    raise ConfigError(f"hydra.sweeper.params.{override.get_key_element()}: {override.input_line!r} is not an "
                      "interval(...), range(...), choice(...) or a plain value")

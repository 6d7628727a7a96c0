"""Users' own networks from the config: `model.encoder=pkg.module:Class` and `model.module_class=pkg.module:Class`.

An encoder replaces the catalog's MLP / CNN inside every network of every algorithm; a module class replaces
an algorithm's whole default RLModule. Both are named in the config, never pickled, so Ray workers, checkpoints
(weights only) and `rlrun-eval` rebuild them by importing the same name, as `algo.learner_class`.

Both are checked when a run is validated, before any process starts: the class is built on the run's spaces
and run forward on a sampled observation batch, so a class that does not meet its contract ends the run in
one line naming what is missing or ill-shaped instead of a traceback in a worker minutes later.

The contracts (docs/extending.md):

- encoder: `Class(observation_space, model_config)`, an `nn.Module` with an integer `out_dim`; forward takes
  a batch of observations and returns float features `[N, out_dim]`. For a structured observation (a
  `PackedSpace`) the class receives the structured space (`space.original`) and, in forward, the structure of
  tensors (`space.unpack(obs)`), never the packed bytes.
- module: `Class(observation_space, action_space, model_config)`, a subclass of the algorithm's contract base
  (`AlgorithmConfig.module_contract`), with the methods and `forward_train` outputs its learner reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrun.config.errors import ConfigError
from rlrun.config.imports import import_class
from rlrun.core.columns import Columns
from rlrun.core.packed_space import PackedSpace
from rlrun.core.rl_module.rl_module import RLModule

ENCODER_KEY = "model.encoder"
MODULE_KEY = "model.module_class"
# Rows of the sampled batch a check runs forward on (and env columns `[B, T]` of a time-major check).
CHECK_ROWS = 3
CHECK_STEPS = 2
# Kinds of forward_train outputs, by the shape a learner reads: the action distribution's inputs (checked by
# building the distribution and sampling actions of the action space's shape), one number per row, or one
# number per row and discrete action.
DIST_INPUTS, PER_ROW, PER_ACTION = "dist_inputs", "per_row", "per_action"


@dataclasses.dataclass(frozen=True)
class ModuleContract:
    """What an algorithm's learner needs of a module: the class it must subclass, the methods it calls besides
    the forwards, the `forward_train` outputs it reads (column -> DIST_INPUTS / PER_ROW / PER_ACTION) and
    whether `forward_train` takes time-major `[B, T, ...]` observations (IMPALA's V-trace)."""

    train_outputs: Mapping[str, str]
    base: type[RLModule] = RLModule
    methods: tuple[str, ...] = ()
    time_major: bool = False


class UnpackingEncoder(nn.Module):
    """A user's encoder of a structured observation: it sees the structure, the runners' batches carry bytes."""

    def __init__(self, space: PackedSpace, encoder: nn.Module) -> None:
        super().__init__()
        self.space = space
        self.encoder = encoder
        self.out_dim = encoder.out_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.space.unpack(obs))


def build_user_encoder(space: gym.Space, model_config: Mapping[str, Any]) -> nn.Module:
    """The `model.encoder` class built for `space` (wrapped to unpack a PackedSpace's rows)."""
    path = model_config["encoder"]
    cls = import_class(path, ENCODER_KEY, nn.Module)
    if isinstance(space, PackedSpace):
        return UnpackingEncoder(space, _construct(cls, path, ENCODER_KEY, space.original, dict(model_config)))
    return _construct(cls, path, ENCODER_KEY, space, dict(model_config))


def user_module_class(model_config: Mapping[str, Any]) -> type[RLModule] | None:
    """The `model.module_class` class, or None when the algorithm's own module is wanted."""
    path = model_config.get("module_class")
    return None if path is None else import_class(path, MODULE_KEY, RLModule)


def _construct(cls: type, path: str, key: str, *args: Any) -> Any:
    """`cls(*args)`; a constructor that fails is the user's class failing, so say which one and how."""
    try:
        return cls(*args)
    except Exception as e:
        raise ConfigError(f"{key} {path!r} could not be built: {type(e).__name__}: {e}") from None


def sample_observations(space: gym.Space, rows: int) -> torch.Tensor:
    """`rows` observations of `space` as the runners batch them (floats as float32, uint8 frames as uint8)."""
    obs = np.stack([space.sample() for _ in range(rows)])
    return torch.as_tensor(obs.astype(np.float32) if obs.dtype.kind == "f" else obs)


def check_encoder(space: gym.Space, model_config: Mapping[str, Any]) -> None:
    """ConfigError unless the `model.encoder` class meets the encoder contract on `space`."""
    path = model_config["encoder"]
    # The check draws no numbers from the run's seeded RNG, and records no gradients.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        encoder = build_user_encoder(space, model_config)
        out_dim = getattr(encoder, "out_dim", None)
        if not isinstance(out_dim, int) or isinstance(out_dim, bool) or out_dim < 1:
            raise ConfigError(f"{ENCODER_KEY} {path!r} must set an integer out_dim >= 1, the size of its features "
                              f"(got {out_dim!r})")
        features = _call(encoder, "forward", path, ENCODER_KEY, sample_observations(space, CHECK_ROWS))
    if not isinstance(features, torch.Tensor) or not features.is_floating_point() \
            or tuple(features.shape) != (CHECK_ROWS, out_dim):
        raise ConfigError(f"{ENCODER_KEY} {path!r}: forward must return float features [N, out_dim] = "
                          f"[{CHECK_ROWS}, {out_dim}] for {CHECK_ROWS} observations; got {_describe(features)}")


def check_module(cls: type[RLModule], contract: ModuleContract, algo: str, observation_space: gym.Space,
                 action_space: gym.Space, model_config: Mapping[str, Any]) -> None:
    """ConfigError unless the `model.module_class` class meets `algo`'s module contract on these spaces."""
    path = model_config["module_class"]
    if not issubclass(cls, contract.base):
        raise ConfigError(f"{MODULE_KEY} {path!r}: algo={algo} needs a subclass of "
                          f"{contract.base.__module__}.{contract.base.__name__}")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        module = _construct(cls, path, MODULE_KEY, observation_space, action_space, dict(model_config))
        for method in ("forward_exploration", "forward_inference", "forward_train", "get_train_action_dist_cls",
                       *contract.methods):
            if not callable(getattr(module, method, None)):
                raise ConfigError(f"{MODULE_KEY} {path!r} lacks the method {method}, which algo={algo} calls")
        obs = sample_observations(observation_space, CHECK_ROWS)
        actions = torch.as_tensor(np.stack([action_space.sample() for _ in range(CHECK_ROWS)]))
        dist_cls = _call(module, "get_train_action_dist_cls", path, MODULE_KEY)
        for forward in ("forward_exploration", "forward_inference"):
            _output(_call(module, forward, path, MODULE_KEY, {Columns.OBS: obs}), forward, Columns.ACTION_DIST_INPUTS,
                    path)
        lead: tuple[int, ...] = (CHECK_ROWS, CHECK_STEPS) if contract.time_major else (CHECK_ROWS,)
        train_obs = obs if not contract.time_major else torch.stack([obs] * CHECK_STEPS, dim=1)
        train_actions = actions if not contract.time_major else torch.stack([actions] * CHECK_STEPS, dim=1)
        outputs = _call(module, "forward_train", path, MODULE_KEY,
                        {Columns.OBS: train_obs, Columns.ACTIONS: train_actions})
        for column, kind in contract.train_outputs.items():
            _check_output(_output(outputs, "forward_train", column, path), kind, column, lead, dist_cls,
                          action_space, path)


def _check_output(value: torch.Tensor, kind: str, column: str, lead: tuple[int, ...], dist_cls: Any,
                  action_space: gym.Space, path: str) -> None:
    """One `forward_train` output against the shape its kind asks for."""
    if kind == DIST_INPUTS:
        try:
            sampled = dist_cls.from_logits(value).sample()
        except Exception as e:
            raise ConfigError(f"{MODULE_KEY} {path!r}: forward_train's {column} of shape {tuple(value.shape)} do "
                              f"not fit its action distribution {dist_cls.__name__}: {type(e).__name__}: {e}") \
                from None
        expected, got, what = (*lead, *action_space.shape), tuple(sampled.shape), f"actions sampled from its {column}"
    else:
        expected = (*lead, int(action_space.n)) if kind == PER_ACTION else lead
        got, what = tuple(value.shape), column
    if got != expected:
        raise ConfigError(f"{MODULE_KEY} {path!r}: forward_train's {what} must have shape {list(expected)} "
                          f"here; got {list(got)}")


def _output(outputs: Any, forward: str, column: str, path: str) -> torch.Tensor:
    """`outputs[column]`, a tensor; ConfigError naming the forward and the column otherwise."""
    value = outputs.get(column) if isinstance(outputs, Mapping) else None
    if not isinstance(value, torch.Tensor):
        raise ConfigError(f"{MODULE_KEY} {path!r}: {forward} must return a dict with a tensor under "
                          f"'{column}'; got {_describe(outputs if value is None else value)}")
    return value


def _call(obj: Any, method: str, path: str, key: str, *args: Any) -> Any:
    """`obj.method(*args)`; an exception in the user's code names the class and the method."""
    try:
        return getattr(obj, method)(*args)
    except NotImplementedError:
        raise ConfigError(f"{key} {path!r} lacks the method {method} (RLModule's own raises "
                          "NotImplementedError)") from None
    except Exception as e:
        raise ConfigError(f"{key} {path!r}: {method} failed on a sampled batch: {type(e).__name__}: {e}") from None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))}"
    return type(value).__name__

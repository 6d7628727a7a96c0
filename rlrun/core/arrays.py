"""numpy data <-> torch tensors where data crosses a process boundary.

Arrays fetched from Ray's object store are read-only views of shared memory;
torch assumes it may write to what it wraps, so those (and only those) are
copied. Checkpoints store nested state as tensors; `map_leaves` converts it
in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def as_tensor(value: Any) -> torch.Tensor:
    """`value` as a tensor, sharing memory unless the array is read-only."""
    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    return torch.as_tensor(array if array.flags.writeable else array.copy())


def map_leaves(obj: Any, leaf_type: type, convert: Callable[[Any], Any]) -> Any:
    """`convert` applied to every `leaf_type` value inside nested dicts, lists and tuples."""
    if isinstance(obj, leaf_type):
        return convert(obj)
    if isinstance(obj, dict):
        return {k: map_leaves(v, leaf_type, convert) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_leaves(v, leaf_type, convert) for v in obj)
    return obj

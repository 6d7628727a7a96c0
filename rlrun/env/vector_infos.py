"""One env copy's infos out of a gymnasium vector env's batched infos (for callbacks' `episode.infos`).

A vector env batches each info key into an array over its copies, with a boolean mask `_key` saying which
copies set it (nested dicts batched the same way); a copy's own dict holds the keys its mask marks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def copy_infos(infos: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The info dict copy `index` returned, as the single env would have given it (numpy scalars as Python's)."""
    own = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not mask[index]:
            continue
        if isinstance(value, Mapping):
            own[key] = copy_infos(value, index)
        else:
            item = value[index]
            own[key] = item.item() if isinstance(item, np.generic) else item
    return own

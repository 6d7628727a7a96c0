"""Find and open a Minari dataset: a directory, or a dataset id in the local Minari root.

Minari keeps a dataset as `<dataset dir>/data/` (its `metadata.json` and the
episodes); `offline.dataset` and `record=` accept either directory, or an id
such as `cartpole-ppo-expert-v0` under `$MINARI_DATASETS_PATH` (default
`~/.minari/datasets`). Every way this can go wrong is an `OfflineDataError`
with one line naming the dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlrun.core.packed_space import pack_space

if TYPE_CHECKING:
    from minari import MinariDataset

METADATA_FILE = "metadata.json"
DATA_DIR = "data"
# Where `rlrun-eval record=...` puts what it knows about the recording (producer checkpoint, env config).
RLRUN_METADATA_KEY = "rlrun"


class OfflineDataError(ValueError):
    """A dataset that is missing, corrupt or does not fit the run; the CLI prints it as one line, exit 2."""


def is_path_spec(spec: str) -> bool:
    """A spec with a path separator (or starting with `.` / `~`) is a directory; anything else is a Minari id."""
    return "/" in spec or spec.startswith((".", "~"))


def dataset_dir(spec: str) -> Path:
    """The dataset directory a spec names (it may not exist yet: `record=` creates it)."""
    if is_path_spec(spec):
        path = Path(spec).expanduser()
        return path.parent if path.name == DATA_DIR and (path / METADATA_FILE).is_file() else path
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path(spec))


@dataclass(frozen=True)
class DatasetInfo:
    """What a run needs to know about a dataset before reading any episode."""

    spec: str
    data_path: Path
    observation_space: gym.Space
    action_space: gym.Space
    env_id: str | None
    episode_lengths: np.ndarray  # steps of each episode, in storage order
    metadata: dict[str, Any]

    @property
    def total_steps(self) -> int:
        return int(self.episode_lengths.sum())


def open_dataset(spec: str) -> MinariDataset:
    """The Minari dataset `spec` names; missing or unreadable ones raise OfflineDataError."""
    from minari import MinariDataset

    data_path = dataset_dir(spec) / DATA_DIR
    if not (data_path / METADATA_FILE).is_file():
        where = "directory" if is_path_spec(spec) else "dataset id in the local Minari root"
        raise OfflineDataError(f"offline.dataset={spec}: no Minari dataset at {data_path} (a {where}; "
                               "record one with rlrun-eval ... record=<dir or id>)")
    try:
        return MinariDataset(data_path)
    except Exception as e:  # Minari raises ValueError, KeyError, JSON and HDF5 errors for damaged files
        raise OfflineDataError(f"offline.dataset={spec}: {data_path} is not a readable Minari dataset "
                               f"({type(e).__name__}: {e})") from None


def dataset_info(spec: str) -> DatasetInfo:
    """Spaces, env id, episode lengths and metadata of a dataset, checked to be complete."""
    dataset = open_dataset(spec)
    data_path = dataset.storage.data_path
    try:
        lengths = np.array([m["total_steps"] for m in dataset.storage.get_episode_metadata(dataset.episode_indices)],
                           dtype=np.int64)
    except Exception as e:
        raise OfflineDataError(f"offline.dataset={spec}: the episodes of {data_path} cannot be read "
                               f"({type(e).__name__}: {e})") from None
    if len(lengths) == 0 or lengths.sum() == 0:
        raise OfflineDataError(f"offline.dataset={spec}: {data_path} holds no transitions")
    metadata = dict(dataset.storage.metadata)
    env_spec = dataset.env_spec
    return DatasetInfo(
        spec=spec,
        data_path=Path(data_path),
        # As the env runners see it: a Dict, Discrete, ... space packed (the reader packs the episodes to match).
        observation_space=pack_space(dataset.observation_space),
        action_space=dataset.action_space,
        env_id=env_spec.id if env_spec is not None else None,
        episode_lengths=lengths,
        metadata=metadata,
    )


def rlrun_metadata(info: DatasetInfo) -> dict[str, Any]:
    """What rlrun wrote about a recording (env config, producing checkpoint); {} for other datasets."""
    raw = info.metadata.get(RLRUN_METADATA_KEY)
    return json.loads(raw) if isinstance(raw, str) else {}


def check_spaces(info: DatasetInfo, env_id: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Refuse an env whose spaces differ from the dataset's: its policy could not act on the dataset's rows."""
    for kind, ours, theirs in (("observation", observation_space, info.observation_space),
                               ("action", action_space, info.action_space)):
        if ours != theirs:
            raise OfflineDataError(f"offline.dataset={info.spec} has {kind} space {theirs}, but env {env_id} has "
                                   f"{ours}; pick the env the dataset was recorded in (env.id) or another dataset")

"""Write recorded episodes as a Minari dataset (HDF5, Minari's default format), atomically.

The dataset is written into a temporary directory beside the target and renamed
into place when complete, so an interrupted recording leaves nothing that
`offline.dataset` could mistake for a dataset.

Observations keep the env's dtype (uint8 pixels stay uint8, a quarter of float32)
and exact values: Minari would JPEG-encode image observations, lossily, so that is
turned off. A structured observation (a PackedSpace) is stored unpacked, in its own
Dict / Tuple / Discrete space, so the dataset is an ordinary Minari dataset of that
env; the reader packs it again.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.core.packed_space import PackedSpace
from rlrun.data.offline.dataset import DATA_DIR, RLRUN_METADATA_KEY, OfflineDataError, dataset_dir


@dataclass
class RecordedEpisode:
    """One finished episode: n + 1 observations (the last is the final one), n of everything else."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    action_logp: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)


def new_dataset_dir(spec: str) -> Path:
    """The directory a recording `spec` names, absolute (Minari's size bookkeeping joins relative paths twice);
    an existing one raises OfflineDataError: a recording never overwrites."""
    target = dataset_dir(spec).resolve()
    if target.exists():
        raise OfflineDataError(f"record={spec}: {target} already exists; record into a new directory or dataset id")
    return target


def write_dataset(
    spec: str,
    episodes: Sequence[RecordedEpisode],
    *,
    env_id: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    algorithm_name: str,
    rlrun_metadata: dict[str, Any],
) -> Path:
    """Write `episodes` as the Minari dataset `spec` (a directory or an id in the Minari root); returns its dir.

    The env spec (when `env_id` is registered) lets Minari and rlrun rebuild the env; `rlrun_metadata` (the
    producing checkpoint, env config, ...) is kept as JSON under the `rlrun` metadata key. Each step's action
    log-probability is in the episode's `infos["action_logp"]` (NaN at the final observation, which has no
    action, so that infos are aligned with observations as Minari's collector aligns them).
    """
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    target = new_dataset_dir(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    env_spec = gym.spec(env_id) if env_id in gym.registry else None
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # Minari JPEG-encodes uint8 image spaces (lossy) unless given jpeg_encoding=False, which 0.5.4 takes.
        lossless = {"jpeg_encoding": False} if "jpeg_encoding" in inspect.signature(MinariStorage.new).parameters \
            else {}
        stored_space = observation_space.original if isinstance(observation_space, PackedSpace) else observation_space
        storage = MinariStorage.new(tmp / DATA_DIR, observation_space=stored_space, action_space=action_space,
                                    env_spec=env_spec, data_format="hdf5", **lossless)
        storage.update_metadata({
            "dataset_id": target.name,
            "minari_version": minari.__version__,
            "algorithm_name": algorithm_name,
            RLRUN_METADATA_KEY: json.dumps(rlrun_metadata),
        })
        storage.update_episodes(
            EpisodeBuffer(
                id=i,
                observations=_in_space_dtype(e.observations, observation_space),
                actions=e.actions,
                rewards=e.rewards,
                terminations=e.terminations,
                truncations=e.truncations,
                infos={"action_logp": np.append(e.action_logp, np.nan).astype(np.float32)},
            )
            for i, e in enumerate(episodes)
        )
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _in_space_dtype(observations: np.ndarray, space: gym.Space) -> np.ndarray:
    """Observations of an integer Box (pixels) in its dtype: an env runner may hand them over as float32, which
    holds every uint8 value exactly. Float observations are written as they come, packed ones unpacked."""
    if isinstance(space, PackedSpace):
        return _to_numpy(space.unpack(torch.from_numpy(np.asarray(observations, dtype=np.uint8))))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.integer):
        return np.asarray(observations, dtype=space.dtype)
    return observations


def _to_numpy(structure: Any) -> Any:
    """An unpacked structure (dicts / tuples of tensors) as Minari stores it: the same of numpy arrays."""
    if isinstance(structure, dict):
        return {key: _to_numpy(value) for key, value in structure.items()}
    if isinstance(structure, tuple):
        return tuple(_to_numpy(value) for value in structure)
    return structure.numpy()

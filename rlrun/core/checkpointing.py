"""Safe, atomic checkpoint files: tensors in safetensors / weights-only torch files, metadata in JSON.

Nothing here pickles classes, so loading a checkpoint never runs code and
survives refactors. Directories are written under a temporary name and renamed
into place, so a crash mid-save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or corrupt."""


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists():
            old = path.parent / f".old-{path.name}-{os.getpid()}"
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous checkpoint back
                raise
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_interrupted_replacements(parent: str | os.PathLike) -> list[Path]:
    """Undo replacements that `atomic_directory` began but a crash cut short; returns what was restored.

    Between moving `<name>` aside to `.old-<name>-<pid>` and moving its new
    version in, `<name>` does not exist: the previous complete directory is put
    back, as if the interrupted write had never begun.
    """
    restored = []
    for old in sorted(Path(parent).glob(".old-*")):
        name = old.name.removeprefix(".old-").rsplit("-", 1)[0]
        if not (old.parent / name).exists():
            os.replace(old, old.parent / name)
            restored.append(old.parent / name)
    return restored


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_file(str(_existing(path)))
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"corrupt checkpoint file {path}: {e}") from None


def save_torch(path: Path, obj: Any) -> None:
    torch.save(obj, path)


def load_torch(path: Path) -> Any:
    try:
        return torch.load(_existing(path), weights_only=True, map_location="cpu")
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"corrupt checkpoint file {path}: {e}") from None


def save_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def load_json(path: Path) -> Any:
    try:
        return json.loads(_existing(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupt checkpoint file {path}: {e}") from None


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    return path

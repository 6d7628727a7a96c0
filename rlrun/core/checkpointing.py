"""Safe, atomic checkpoint files: tensors in safetensors / weights-only torch files, metadata in JSON.

Nothing here pickles classes, so loading a checkpoint never runs code and
survives refactors. Directories are written under a temporary name and renamed
into place, so a crash mid-save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or corrupt."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint that could not be written (a full disk, a read-only directory); nothing of it was left behind."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"could not write checkpoint {path}: {reason}; the previous checkpoints are intact")
        self.path, self.reason = path, reason


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` only when the block succeeds.

    A write the OS refuses (no space left, a read-only directory), in the block or here, raises
    CheckpointWriteError naming `path` and the OS's reason; the temporary directory is removed and a
    previous `path` stays as it was.
    """
    path = Path(path)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    try:
        with _write_errors_name(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            yield tmp
            _fsync_tree(tmp)
            _replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(tmp: Path, path: Path) -> None:
    """Move the finished `tmp` to `path`; a previous `path` is put back if the move fails."""
    if path.exists():
        old = path.parent / f".old-{path.name}-{os.getpid()}"
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _write_errors_name(path: Path) -> Iterator[None]:
    """An OSError (also one a serializer hid in its own error type, see `_writing`) -> CheckpointWriteError naming
    `path`; one from a directory written inside it (the learner's) is renamed after `path` too, not its temporary
    parent."""
    try:
        yield
    except OSError as e:
        raise CheckpointWriteError(path, e.strerror or str(e)) from None
    except CheckpointWriteError as e:
        raise CheckpointWriteError(path, e.reason) from None


class _File:
    """A file a serializer writes that keeps the OSError of a failed write: torch's archive writer reports a full
    disk as `RuntimeError: ... unexpected pos`, which hides the cause."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 (closed by _writing)
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.file.flush()


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[_File]:
    """`path` opened for a serializer; if the OS refused its bytes, that OSError is raised, whatever the serializer
    made of it."""
    file = _File(path)
    try:
        yield file
        file.file.close()
    except Exception:
        file.file.close()
        if file.error is not None:
            raise file.error from None
        raise


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
    # numpy, safetensors and torch are imported where used: the CLI imports CheckpointError at every start-up.
    import numpy as np
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})  # weights: small enough to hold twice
    with _writing(path) as file:
        file.write(data)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    with _reading(path):
        return load_file(str(path))


def save_torch(path: Path, obj: Any) -> None:
    import torch

    with _writing(path) as file:
        torch.save(obj, file)


def load_torch(path: Path, mmap: bool = False) -> Any:
    """A `save_torch` file, tensors and plain containers only (`weights_only`: nothing is unpickled as code).

    `save_torch` always writes torch's zip archive; anything else is refused before torch
    reads it, so torch never falls back to its legacy pickle reader. `mmap=True` maps the
    tensors' storage instead of reading it (`check_files` reads a large replay buffer this way).
    """
    import torch

    with _reading(path):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"checkpoint file {path} is corrupt (not a torch.save archive)")
        return torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)


def save_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def load_json(path: Path) -> Any:
    with _reading(path):
        return json.loads(path.read_text())


# Sentences of torch's load errors that explain `weights_only` instead of the file's problem.
_TORCH_ADVICE = ("weights_only", "Weights only load failed", "torch.load", "trusted source", "file an issue")

# How each kind of checkpoint file is read back; `check_files` reads every file with its loader.
_LOADERS: dict[str, Callable[[Path], Any]] = {
    ".json": load_json,
    ".safetensors": load_arrays,
    ".pt": functools.partial(load_torch, mmap=True),
}


def check_files(directory: Path) -> None:
    """Raise CheckpointError naming the first file under `directory` that its loader cannot read.

    A crash never leaves a half-written checkpoint (`atomic_directory`), but a disk, a copy
    or a hand can damage one afterwards; this finds that before anything is restored, so a
    caller can fall back to another checkpoint. Torch files are memory-mapped, so a large
    replay buffer is not read twice. A file that loads but holds the wrong content is the
    restore's to find.
    """
    for path in sorted(directory.rglob("*")):
        loader = _LOADERS.get(path.suffix)
        if loader is not None and path.is_file():
            loader(path)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure to read checkpoint file `path` into a one-line CheckpointError that names it."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        yield
    except CheckpointError:
        raise
    except OSError as e:
        raise CheckpointError(f"checkpoint file {path} is unreadable ({e.strerror or e})") from None
    except Exception as e:  # safetensors, torch, json and the unpickler each raise their own types
        raise CheckpointError(f"checkpoint file {path} is corrupt ({_short_cause(e)})") from None


def _short_cause(error: Exception) -> str:
    """What went wrong, in one short phrase, without torch's advice to retry with `weights_only=False`.

    Torch's weights-only unpickler explains a refused file at length and suggests loading it as
    an unrestricted pickle, which runs whatever code the file holds: never advice to give for a
    file that is corrupt or came from elsewhere. Its own reason is the sentence that is left.
    """
    sentences = [part.strip().rstrip(".") for line in str(error).splitlines() for part in line.split(". ")]
    reasons = [s for s in sentences if s and not any(advice in s for advice in _TORCH_ADVICE)]
    return f"{type(error).__name__}: {reasons[0]}" if reasons else type(error).__name__

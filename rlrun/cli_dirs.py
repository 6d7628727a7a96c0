"""Leave nothing behind when `rlrun` rejects a command: remove the directories the command created.

Hydra creates the run directory (`outputs/<date>/<time>`) or the sweep directory
(`multirun/<date>/<time>`, where it writes `multirun.yaml`) with every missing parent before
the job sees its config. `run_experiment` removes a rejected run's own directory; its parents,
and a sweep rejected before any job ran, are removed here. Only directories that did not exist
when the command started are removed, and only while they hold nothing else, so a user's
directory is never touched. config.yaml installs `NoteNewDirs` as a Hydra callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# What Hydra itself writes into a sweep directory before the first job starts.
_SWEEP_RECORD = "multirun.yaml"
# The directories this command is about to create, deepest first. Module state because Hydra
# instantiates the callback itself; the CLI's error path reads it in the same process.
_new_dirs: list[Path] = []


class NoteNewDirs(Callback):
    """Notes, before Hydra creates them, which directories of the run or sweep dir are new."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        note_new_dirs(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        note_new_dirs(Path(config.hydra.sweep.dir))


def note_new_dirs(directory: Path) -> None:
    """Remember `directory` and those of its parents that do not exist yet."""
    directory = directory.absolute()
    _new_dirs[:] = [d for d in (directory, *directory.parents) if not d.exists()]


def remove_new_dirs() -> None:
    """Remove the noted directories, deepest first, while each holds nothing but Hydra's sweep record."""
    for directory in _new_dirs:
        if not directory.is_dir():
            continue
        if not {p.name for p in directory.iterdir()} <= {_SWEEP_RECORD}:
            break  # a job ran, or someone put something there: keep it and everything above it
        (directory / _SWEEP_RECORD).unlink(missing_ok=True)
        try:
            directory.rmdir()
        except OSError:  # another command started writing into it just now (e.g. outputs/<date>/<time>)
            break
    _new_dirs.clear()

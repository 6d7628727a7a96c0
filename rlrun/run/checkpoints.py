"""Where a run's checkpoints go and how they are found again.

`checkpoints/checkpoint_<iteration>/` every `checkpoint.every_iterations` (the newest
`checkpoint.keep_last` of them kept), `checkpoints/final/` when the run ends and
`checkpoints/best/` after each evaluation that beats every earlier one. All are
complete algorithm checkpoints, written atomically (`.tmp-*` directories are
unfinished writes and never count). A checkpoint that a resume finds damaged is
moved to `corrupt_checkpoints/` beside `checkpoints/`, never deleted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rlrun.algorithms.algorithm import Algorithm, read_checkpoint_state
from rlrun.core import checkpointing as ckpt
from rlrun.core.checkpointing import CheckpointError

CHECKPOINTS_DIR = "checkpoints"
FINAL = "final"
BEST = "best"
PERIODIC_PREFIX = "checkpoint_"
UNFINISHED_PREFIX = ".tmp-"
# Checkpoints that a resume found corrupt, kept for the user (`set_aside`).
CORRUPT_DIR = "corrupt_checkpoints"
RUN_CONFIG = Path(".hydra") / "config.yaml"


def save_checkpoint(algo: Algorithm, run_dir: Path, final: bool = False) -> Path:
    """Atomically write the algorithm's state; the directory appears only when complete."""
    name = FINAL if final else f"{PERIODIC_PREFIX}{algo.iteration:06d}"
    return algo.save_to_path(run_dir / CHECKPOINTS_DIR / name)


def save_best(algo: Algorithm, run_dir: Path) -> Path:
    """`checkpoints/best`: the state right after an evaluation (its return is in algorithm_state.json)."""
    return algo.save_to_path(run_dir / CHECKPOINTS_DIR / BEST)


def best_return(run_dir: Path) -> float | None:
    """The evaluation return of `checkpoints/best`, or None if there is none yet."""
    best = run_dir / CHECKPOINTS_DIR / BEST
    if not best.is_dir():
        return None
    evaluation = read_checkpoint_state(best).get("evaluation")
    return None if evaluation is None else evaluation["episode_return_mean"]


def prune_checkpoints(run_dir: Path, keep_last: int | None) -> None:
    """Delete all but the newest `keep_last` periodic checkpoints (0/None keeps all)."""
    if not keep_last:
        return
    periodic = sorted((run_dir / CHECKPOINTS_DIR).glob(f"{PERIODIC_PREFIX}*"))  # zero-padded: sorted by iteration
    for path in periodic[:-keep_last]:
        shutil.rmtree(path)


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Every checkpoint directory of a run whose write finished, by name.

    Besides the named ones this includes a `.old-*` directory that a crash left
    between moving a checkpoint aside and moving its replacement in.
    """
    root = run_dir / CHECKPOINTS_DIR
    return [path for path in sorted(root.iterdir() if root.is_dir() else ())
            if path.is_dir() and not path.name.startswith(UNFINISHED_PREFIX)]


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every complete checkpoint of a run, oldest first (`final` after a periodic one of
    the same iteration); an unreadable `algorithm_state.json` raises CheckpointError."""
    found = [(int(read_checkpoint_state(path)["iteration"]), path) for path in checkpoint_dirs(run_dir)]
    return sorted(found, key=lambda item: item[0])


def latest_checkpoint(run_dir: Path) -> Path:
    """The complete checkpoint of the highest iteration."""
    found = complete_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    return found[-1][1]


def check_checkpoint(checkpoint: Path) -> int:
    """The iteration of a checkpoint whose every file loads; else CheckpointError naming the first that does not."""
    iteration = int(read_checkpoint_state(checkpoint)["iteration"])
    ckpt.check_files(checkpoint)
    return iteration


def newest_intact_checkpoint(run_dir: Path) -> tuple[Path, list[tuple[Path, CheckpointError]]]:
    """The checkpoint of the highest iteration whose files all load, and each checkpoint passed over, with why.

    Writes are atomic, so a corrupt checkpoint was damaged afterwards (a disk, a copy, a
    hand): rather than refuse to go on, a run continues from the newest one that is whole,
    as after a crash. Passed over are the newer ones that do not load and every one whose
    `algorithm_state.json` cannot be read (its iteration is unknown). CheckpointError if
    no checkpoint is intact.
    """
    readable, skipped = [], []
    for path in checkpoint_dirs(run_dir):
        try:
            readable.append((int(read_checkpoint_state(path)["iteration"]), path))
        except CheckpointError as e:
            skipped.append((path, e))
    for _, path in reversed(sorted(readable, key=lambda item: item[0])):
        try:
            ckpt.check_files(path)
        except CheckpointError as e:
            skipped.append((path, e))
            continue
        return path, skipped
    if not skipped:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    reasons = "; ".join(f"{path.name}: {error}" for path, error in skipped)
    raise CheckpointError(f"run directory {run_dir} has no intact checkpoint ({reasons})")


def set_aside(run_dir: Path, checkpoint: Path) -> Path:
    """Move a corrupt checkpoint to `<run dir>/corrupt_checkpoints/`, where nothing reads or deletes it.

    rlrun deletes no data it cannot read: a damaged checkpoint may still be worth a look,
    and the user decides. Out of `checkpoints/`, it is never resumed from, evaluated,
    pruned or overwritten by the checkpoint of the same name that the run writes next.
    """
    root = run_dir / CORRUPT_DIR
    root.mkdir(exist_ok=True)
    name = checkpoint.name.lstrip(".")
    dest = root / name
    copies = 1
    while dest.exists():
        copies += 1
        dest = root / f"{name}-{copies}"
    os.replace(checkpoint, dest)
    return dest


def locate(target: Path) -> tuple[Path, Path | None]:
    """(run directory, checkpoint) for a path that names a run directory (checkpoint None) or a checkpoint."""
    target = target.expanduser().resolve()
    if not target.exists():
        raise CheckpointError(f"{target} does not exist")
    if (target / RUN_CONFIG).is_file():
        return target, None
    if target.parent.name == CHECKPOINTS_DIR and (target.parent.parent / RUN_CONFIG).is_file():
        return target.parent.parent, target
    raise CheckpointError(
        f"{target} is neither a run directory (with {RUN_CONFIG}) nor a checkpoint in a run's {CHECKPOINTS_DIR}/"
    )

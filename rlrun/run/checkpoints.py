"""Where a run's checkpoints go and how they are found again.

`checkpoints/checkpoint_<iteration>/` every `checkpoint.every_iterations` (the newest
`checkpoint.keep_last` of them kept), `checkpoints/final/` when the run ends and
`checkpoints/best/` after each evaluation that beats every earlier one. All are
complete algorithm checkpoints, written atomically (`.tmp-*` directories are
unfinished writes and never count).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rlrun.algorithms.algorithm import Algorithm, read_checkpoint_state
from rlrun.core.checkpointing import CheckpointError

CHECKPOINTS_DIR = "checkpoints"
FINAL = "final"
BEST = "best"
PERIODIC_PREFIX = "checkpoint_"
UNFINISHED_PREFIX = ".tmp-"
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


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every complete checkpoint of a run, oldest first.

    Besides the named ones this includes a `.old-*` directory that a crash left
    between moving a checkpoint aside and moving its replacement in.
    """
    root = run_dir / CHECKPOINTS_DIR
    found = []
    for path in sorted(root.iterdir() if root.is_dir() else ()):
        if path.is_dir() and not path.name.startswith(UNFINISHED_PREFIX):
            found.append((int(read_checkpoint_state(path)["iteration"]), path))
    return sorted(found, key=lambda item: item[0])


def latest_checkpoint(run_dir: Path) -> Path:
    """The complete checkpoint of the highest iteration."""
    found = complete_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"run directory {run_dir} has no complete checkpoint")
    return found[-1][1]


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

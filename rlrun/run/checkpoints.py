"""Where a run's checkpoints go: `checkpoints/checkpoint_<iteration>/` and `checkpoints/final/`."""

from __future__ import annotations

from pathlib import Path

from rlrun.algorithms.algorithm import Algorithm

CHECKPOINTS_DIR = "checkpoints"


def save_checkpoint(algo: Algorithm, run_dir: Path, final: bool = False) -> Path:
    """Atomically write the algorithm's state; the directory appears only when complete."""
    name = "final" if final else f"checkpoint_{algo.iteration:06d}"
    return algo.save_to_path(run_dir / CHECKPOINTS_DIR / name)

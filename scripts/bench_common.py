"""What the benchmark scripts share: spawn-to-exit timing with the process tree's peak memory, and .venv-bench.

A user waits from the moment a command starts to the moment it exits, and a
Ray run's memory is spread over several processes (GCS, raylet, actors), so
every benchmarked run is a fresh process, timed from spawn to exit, whose
whole process tree is sampled for memory while it runs.

Stable-Baselines3 and rl-zoo3 need an older stack than rlrun's, so the peers'
side of a comparison runs in its own venv, .venv-bench, created on first use
(CPU torch first, as `make install` does, then pinned stable-baselines3,
rl_zoo3 and sb3-contrib (RecurrentPPO), and what CleanRL's Atari scripts in ../shared/anchors import: ALE,
tyro, tensorboard, OpenCV, envpool; this needs the package index). Its stamp
lists what was installed, so a venv made before a package was added gets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from rlrun.run.recorder import read_metrics

REPO = Path(__file__).resolve().parents[1]
RLRUN = str(Path(sys.executable).with_name("rlrun"))
BENCH_VENV = REPO / ".venv-bench"
BENCH_PY = BENCH_VENV / "bin" / "python"
# CPU torch first (an unpinned torch pulls the CUDA packages), then the versions the benches were written on
# (sb3-contrib for RecurrentPPO), then what CleanRL's ppo_atari.py / ppo_atari_envpool.py (../shared/anchors) import
# and gymnasium's MuJoCo envs for the SB3 side of the MuJoCo benchmarks.
BENCH_PACKAGES = (["torch==2.13.0"], ["stable-baselines3==2.9.2", "rl_zoo3==2.9.2", "sb3-contrib==2.9.2"],
                  ["gymnasium[atari,mujoco]", "ale-py", "tyro", "tensorboard", "opencv-python-headless",
                   "envpool==1.2.5"])
INSTALLED_STAMP = BENCH_VENV / ".installed"
# CleanRL's reference scripts, kept outside the project (never copied into it): /work/shared beside the checkout.
ANCHORS = REPO.parent / "shared" / "anchors"


def ensure_bench_venv() -> None:
    """Create .venv-bench with SB3, rl-zoo3 and CleanRL's imports unless one with all of BENCH_PACKAGES exists."""
    wanted = json.dumps(BENCH_PACKAGES)
    if INSTALLED_STAMP.exists() and INSTALLED_STAMP.read_text().strip() == wanted:
        return
    if not BENCH_PY.exists():
        print(f"creating {BENCH_VENV} (stable-baselines3, rl_zoo3, CleanRL's Atari imports) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    else:
        print(f"completing {BENCH_VENV} ({', '.join(p for group in BENCH_PACKAGES for p in group)}) ...", flush=True)
    for packages in BENCH_PACKAGES:
        subprocess.run([str(BENCH_PY), "-m", "pip", "install", "-q", *packages], check=True)
    INSTALLED_STAMP.write_text(wanted + "\n")


def tree_pss_mb(root: psutil.Process) -> float:
    """PSS of `root` and all its descendants in MiB: shared pages (Ray's object store, libraries) count once."""
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # a process that just exited
            total += proc.memory_full_info().pss
    return total / 2**20


@dataclass(frozen=True)
class Watched:
    """One finished command: when it was spawned (epoch s), spawn to exit (s), peak tree PSS (MiB), its stdout."""

    start: float
    exit_s: float
    peak_mb: float
    stdout: str

    def last_json(self) -> dict[str, Any]:
        """The JSON object a reference script prints as its last line."""
        return json.loads(self.stdout.splitlines()[-1])


def run_watched(cmd: list[str], cwd: Path | None = None) -> Watched:
    """Run `cmd` to completion, sampling its process tree's memory from a thread (so its exit is seen at once).

    stderr passes through; a failure ends the benchmark with the command and its exit status.
    """
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                peak[0] = max(peak[0], tree_pss_mb(root))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    end = time.time()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    return Watched(start=start, exit_s=end - start, peak_mb=peak[0], stdout=stdout)


def run_rlrun(overrides: list[str], run_dir: Path) -> tuple[Watched, list[dict[str, Any]]]:
    """`rlrun <overrides>` in a fresh process writing to `run_dir`, silent; returns the watch and its metrics rows."""
    watched = run_watched([RLRUN, *overrides, "logger.console=none", f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
    return watched, read_metrics(run_dir)


def median_of(runs: Iterable[dict[str, float]], key: str) -> float:
    """Median of `key` over the runs where it is a number (NaN, e.g. an unsolved run's time, is left out)."""
    finite = [run[key] for run in runs if run[key] == run[key]]
    return statistics.median(finite) if finite else float("nan")


def machine() -> str:
    """CPUs, their model, RAM, OS and the Python/torch versions the numbers were measured with."""
    import platform

    import torch

    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
              if line.startswith("model name")]
    model = models[0] if models else platform.processor() or platform.machine()
    return (f"{os.cpu_count()} CPUs ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}")

"""A sweep over `algo.lr` trains at the swept rates under every preset whose lr follows a schedule.

Those presets once set `lr_schedule` to fixed numbers, which won over `algo.lr`: a sweep over
`algo.lr` ran identical jobs and logged the preset's rate in all of them. Their schedules now start
at `${algo.lr}`, and a schedule that starts elsewhere is refused (tests/test_cli_errors.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import RLRUN
from omegaconf import OmegaConf

from rlrun.core.schedules import PiecewiseSchedule

# One worker runs the module: its tests share a module fixture (a run or sweep), made once per worker.
pytestmark = pytest.mark.xdist_group("lr_sweep")

PRESETS = ["cartpole_ppo_fast", "cartpole_dqn", "cartpole_impala", "cartpole_appo", "multi_cartpole_ppo"]
RATES = (0.004, 0.0004)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """One `rlrun -m` over every scheduled preset and two rates (embedded: the rate is the subject here), each
    job just past cartpole_dqn's 1000 env steps before learning starts."""
    sweep_dir = tmp_path_factory.mktemp("lr_sweep") / "sweep"
    cmd = [RLRUN, "-m", f"experiment={','.join(PRESETS)}", f"algo.lr={','.join(map(str, RATES))}",
           "stop.timesteps=1300", "env_runners.num=0", "learners.num=0", "evaluation.episodes=1",
           "logger.console=none", f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=sweep_dir.parent)
    assert proc.returncode == 0, proc.stderr
    return sweep_dir


def _job(sweep_dir: Path, preset: str, lr: float) -> tuple[dict, dict]:
    """The job's resolved config and its last metrics row."""
    for job in sweep_dir.iterdir():
        if not (job / ".hydra").is_dir():
            continue
        cfg = OmegaConf.to_container(OmegaConf.load(job / ".hydra" / "config.yaml"), resolve=True)
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        if f"experiment={preset}" in overrides and cfg["algo"]["lr"] == lr:
            rows = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
            return cfg, rows[-1]
    raise AssertionError(f"no job of {preset} at lr {lr} in {sweep_dir}")


@pytest.mark.parametrize("preset", PRESETS)
def test_a_sweep_over_lr_trains_at_the_swept_rates(sweep: Path, preset: str):
    logged = {}
    for lr in RATES:
        cfg, row = _job(sweep, preset, lr)
        schedule = cfg["algo"]["lr_schedule"]
        assert schedule[0][1] == lr, f"{preset}: the schedule starts at {schedule[0][1]}, not algo.lr={lr}"
        rates = [v for k, v in row.items() if k.startswith("learners/") and k.endswith("_learning_rate")]
        assert rates, f"{preset}: no learning rate logged"
        # What the optimizer used in this iteration: the schedule between the start and the steps sampled so far.
        low = PiecewiseSchedule(schedule).value(row["num_env_steps_sampled_lifetime"])
        for rate in rates:
            assert min(low, lr) * (1 - 1e-6) <= rate <= max(low, lr) * (1 + 1e-6), (preset, lr, rate, schedule)
        logged[lr] = rates[0]
    # Ten times the rate, about ten times the logged rate: less where the schedule ends above 0, and the two
    # jobs' updates come at slightly different env steps (episodes end apart), so not exactly ten.
    assert 5 < logged[RATES[0]] / logged[RATES[1]] < 10.5, logged

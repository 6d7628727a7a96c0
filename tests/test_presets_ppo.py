"""The PPO presets meet issue 13's table: each seed reaches its goal within its env-step budget.

Pendulum, Acrobot and MiniGrid DoorKey have training-return goals; both LunarLanders' are on the final
greedy evaluation.

Each run goes through the CLI exactly as a user types it and stops at the preset's own
`stop.return_mean` (the goal) or `stop.timesteps` (the budget), whichever comes first;
the last metrics row says which. Tens of seconds to a minute or two each: `slow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# preset -> (training return goal, env-step budget), as in issue 13 and the presets' stop keys.
PRESETS = {
    "pendulum_ppo": (-200.0, 150_000),
    "acrobot_ppo": (-90.0, 150_000),
    # Issue 25: a sparse-reward task from pixels-like observations (MiniGrid's 7x7x3 view, a CNN).
    "minigrid_doorkey_ppo": (0.9, 200_000),
    # Issue 26: the same task from MiniGrid's raw Dict observation (image through the CNN, direction one-hot).
    "minigrid_doorkey_dict_ppo": (0.9, 200_000),
    # Issue 27: memory (CartPole without its velocities) through an LSTM; seeds 0-19 reach it at 64k-123k.
    "stateless_cartpole_ppo_lstm": (475.0, 150_000),
    # Issue 27: Pendulum without its angular velocity through an LSTM; seeds 0-4 reach it at 131k-135k.
    "stateless_pendulum_ppo_lstm": (-250.0, 300_000),
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_ppo_preset_reaches_its_goal_within_its_budget(run_cli, tmp_path: Path, preset: str, seed: int) -> None:
    goal, budget = PRESETS[preset]
    proc = run_cli(f"experiment={preset}", f"seed={seed}", "logger.tensorboard=false", timeout=900)
    assert proc.returncode == 0, proc.stderr
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["env_runners/episode_return_mean"] >= goal, (last["num_env_steps_sampled_lifetime"],
                                                              last["env_runners/episode_return_mean"])
    # The run stopped at the goal, and the goal came within the budget.
    assert last["num_env_steps_sampled_lifetime"] <= budget, last["num_env_steps_sampled_lifetime"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("preset", ["lunarlander_ppo", "lunarlander_continuous_ppo"])
def test_lunarlander_preset_lands_at_1m_env_steps(run_cli, tmp_path: Path, preset: str, seed: int) -> None:
    """Issue 13's goal for both LunarLanders is on the evaluation: >= 200 greedy (20 episodes) after 1M env
    steps (rl-zoo3's tuned PPO: 242 discrete). About 3 minutes each."""
    proc = run_cli(f"experiment={preset}", f"seed={seed}", "logger.tensorboard=false", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["num_env_steps_sampled_lifetime"] <= 1_000_000 + 16_384  # the budget, to within one batch
    assert last["evaluation/episode_return_mean"] >= 200, last["evaluation/episode_return_mean"]



# Issue 28: the MuJoCo presets' goals are on the greedy evaluation after 1M env steps (15-25 minutes a run on
# these 2 cores; docs/benchmarks.md has the full runs). So a regression shows without them, each is checked at a
# milestone of its own measured curve: the training return (the last 100 episodes) after its first env steps, at
# most about half of what seeds 0-2 had there (halfcheetah_ppo at 200k: 2615, 2506, 2793; hopper_ppo at 300k: 2615,
# 1949, 1103; walker2d_ppo at 300k: 1218, 1022, 659). A random policy scores below 100 on all three.
MUJOCO_MILESTONES = {"halfcheetah_ppo": (200_000, 1300.0), "hopper_ppo": (300_000, 550.0),
                     "walker2d_ppo": (300_000, 330.0)}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("preset", sorted(MUJOCO_MILESTONES))
def test_mujoco_preset_passes_its_milestone(run_cli, tmp_path: Path, preset: str, seed: int) -> None:
    steps, goal = MUJOCO_MILESTONES[preset]
    proc = run_cli(f"experiment={preset}", f"seed={seed}", f"stop.timesteps={steps}", "logger.tensorboard=false",
                   timeout=1200)
    assert proc.returncode == 0, proc.stderr
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["env_runners/episode_return_mean"] >= goal, (last["num_env_steps_sampled_lifetime"],
                                                              last["env_runners/episode_return_mean"])

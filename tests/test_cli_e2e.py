"""End-to-end: the real `rlrun` CLI in a subprocess learns CartPole and leaves a complete run directory.

(A sweep through the CLI is tested in test_sweeps.py.)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlrun.run.recorder import read_metrics

RETURN_KEY = "env_runners/episode_return_mean"


def test_cli_solves_cartpole_and_writes_complete_run_dir(run_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli("experiment=cartpole_ppo_fast", "stop.return_mean=300", "checkpoint.every_iterations=10",
                   run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    rows = read_metrics(run_dir)
    assert rows[-1][RETURN_KEY] >= 300, f"did not learn: final mean return {rows[-1][RETURN_KEY]}"
    assert [r["training_iteration"] for r in rows] == list(range(1, len(rows) + 1))
    for key in ("num_env_steps_sampled_lifetime", "learners/default_policy/total_loss",
                "learners/default_policy/policy_loss", "learners/default_policy/vf_loss",
                "learners/default_policy/entropy", "timers/env_runner_sampling_timer",
                "timers/learner_update_timer", "num_env_steps_sampled_lifetime_throughput", "timestamp"):
        assert key in rows[-1], key
    steps = [r["num_env_steps_sampled_lifetime"] for r in rows]
    assert steps == sorted(steps) and steps[0] > 0

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["env"]["id"] == "CartPole-v1" and config["stop"]["return_mean"] == 300
    assert "stop.return_mean=300" in (run_dir / ".hydra" / "overrides.yaml").read_text()

    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    final = run_dir / "checkpoints" / "final"
    assert (final / "algorithm_state.json").is_file()
    assert (final / "learner_group" / "module_default_policy.safetensors").is_file()
    assert (run_dir / "checkpoints" / "checkpoint_000010" / "algorithm_state.json").is_file()
    assert not list((run_dir / "checkpoints").glob(".tmp-*")), "temporary checkpoint left behind"
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "finished" in (run_dir / "rlrun.log").read_text()
    assert str(run_dir) in proc.stdout


def test_plain_console_prints_the_last_progress_line_once(run_cli) -> None:
    # One iteration: the first update always prints its line, and the end of the run must not repeat it.
    # (A small one: the preset's 1024-step batch and 6 epochs change nothing the console prints.)
    proc = run_cli("experiment=cartpole_ppo_fast", "stop.iterations=1", "evaluation.episodes=1",
                   "logger.tensorboard=false", "env_runners.num_envs_per_runner=2", "algo.train_batch_size=64",
                   "algo.minibatch_size=32", "algo.num_epochs=1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.startswith("iter=")]
    assert len(progress) == 1 and progress[0].startswith("iter=1 "), proc.stdout
    assert lines[-1].startswith("done (iterations >= 1); run directory: "), proc.stdout

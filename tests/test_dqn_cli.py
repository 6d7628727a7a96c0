"""DQN through the real CLI: a run directory whose checkpoints leave the replay buffer out, resumed; `rlrun-eval`
with video, `rlrun-report`, TensorBoard and the learning curve on it; and the `dqn_cartpole_optuna` study."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from test_eval import ENV, MAGIC, RLRUN, RLRUN_EVAL, report_of
from test_report import PNG_MAGIC, REPORT, comparison_rows
from test_sweeps import OBJECTIVE_LINE, job_config, job_dirs, rlrun

from rlrun.api import train
from rlrun.run.recorder import read_metrics

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("dqn_cli")

# 2 envs x 16 steps per iteration; one update per iteration once 64 env steps are in.
RUN = ("algo=dqn", "env_runners.num_envs_per_runner=2", "algo.num_steps_sampled_before_learning_starts=64",
       "evaluation.every_iterations=5", "evaluation.episodes=2", "stop.timesteps=null", "logger.console=plain")
FIRST_ITERATIONS, ALL_ITERATIONS = 10, 16
REFILL_WARNING = "holds no replay buffer (checkpoint.replay_buffer=false)"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=240, cwd=cwd, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> dict:
    """10 iterations with checkpoint.replay_buffer=false, then resumed to 16 with the buffer checkpointed again."""
    run_dir = tmp_path_factory.mktemp("dqn") / "run"
    # The first part in this process (`rlrun.train` writes the CLI's run directory); the resume is a real `rlrun`.
    train(*RUN, f"stop.iterations={FIRST_ITERATIONS}", "checkpoint.replay_buffer=false", f"hydra.run.dir={run_dir}")
    first_final = sorted(p.name for p in (run_dir / "checkpoints" / "final").iterdir())
    resumed = cli(RLRUN, f"resume={run_dir}", f"stop.iterations={ALL_ITERATIONS}", "checkpoint.replay_buffer=true",
                  cwd=run_dir.parent)
    return {"run_dir": run_dir, "first_final": first_final, "resumed": resumed}


def test_resume_from_a_checkpoint_without_the_buffer_says_so_and_refills_it(dqn_run: dict) -> None:
    assert "replay_buffer.pt" not in dqn_run["first_final"] and "off_policy_state.json" in dqn_run["first_final"]
    stderr = dqn_run["resumed"].stderr
    assert [line for line in stderr.splitlines() if REFILL_WARNING in line] == stderr.strip().splitlines(), stderr
    assert "learning resumes after 64 env steps" in stderr
    rows = read_metrics(dqn_run["run_dir"])
    assert [r["training_iteration"] for r in rows] == list(range(1, ALL_ITERATIONS + 1))
    at_resume = rows[FIRST_ITERATIONS - 1]
    assert at_resume["num_learner_updates_lifetime"] > 0
    refilled = 0
    for row in rows[FIRST_ITERATIONS:]:
        since = row["num_env_steps_sampled_lifetime"] - at_resume["num_env_steps_sampled_lifetime"]
        assert row["replay_buffer/num_env_steps_added_lifetime"] == since
        refilled += since >= 64  # one update per iteration (training_intensity null) once refilled
        assert row["num_learner_updates_lifetime"] - at_resume["num_learner_updates_lifetime"] == refilled, row
        assert ("learners/default_policy/qf_loss" in row) == (since >= 64)
    assert 0 < refilled < ALL_ITERATIONS - FIRST_ITERATIONS
    assert (dqn_run["run_dir"] / "checkpoints" / "final" / "replay_buffer.pt").is_file()


def test_rlrun_eval_with_video_reproduces_the_run_s_evaluation(dqn_run: dict) -> None:
    run_dir = dqn_run["run_dir"]
    proc = cli(RLRUN_EVAL, f"checkpoint={run_dir / 'checkpoints' / 'final'}", "episodes=2", "video=true",
               "video_format=gif", cwd=run_dir.parent)
    report = report_of(proc)
    assert report["iteration"] == ALL_ITERATIONS
    assert report["episode_return_mean"] == read_metrics(run_dir)[-1]["evaluation/episode_return_mean"]
    video = Path(report["video"])
    offset, magic = MAGIC[".gif"]
    assert video.parent == run_dir / "videos" and video.read_bytes()[offset:offset + len(magic)] == magic


def test_rlrun_report_tensorboard_and_learning_curve(dqn_run: dict, tmp_path: Path) -> None:
    run_dir = dqn_run["run_dir"]
    cli(REPORT, str(run_dir), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    (label, row), = comparison_rows((tmp_path / "rep" / "report.md").read_text()).items()
    assert "algo=dqn" in label and row["seeds"] == "1"
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == PNG_MAGIC

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("learners/default_policy/qf_loss", "learners/default_policy/td_error_mean", "env_runners/epsilon",
                "replay_buffer/num_env_steps_stored", "evaluation/episode_return_mean"):
        assert tag in scalars, tag
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["algo.name"].string_value == "dqn" and hparams["algo.n_step"].number_value == 1


def test_dqn_optuna_study_tunes_the_cartpole_dqn_preset(tmp_path: Path) -> None:
    """Two tiny trials (2 iterations, a small network): each samples the preset's space on experiment=cartpole_dqn,
    its objective is its final evaluation return, and optimization_results.yaml holds the best one."""
    sweep_dir = tmp_path / "study"
    proc = rlrun("hparams_search=dqn_cartpole_optuna", "hydra.sweeper.n_trials=2", "stop.timesteps=512",
                 "algo.num_steps_sampled_before_learning_starts=256", "model.hiddens=[16]", "evaluation.episodes=2",
                 "logger.console=none", cwd=tmp_path, sweep_dir=sweep_dir)
    assert proc.returncode == 0, proc.stderr
    assert job_dirs(sweep_dir) == ["0", "1"]
    objectives, params = {}, {}
    for job in job_dirs(sweep_dir):
        config = OmegaConf.to_container(OmegaConf.create(job_config(sweep_dir / job)), resolve=True)
        algo = config["algo"]
        assert algo["name"] == "dqn" and config["env_runners"]["rollout_fragment_length"] == 64  # cartpole_dqn
        assert 3e-4 <= algo["lr"] <= 1e-2 and 0.95 <= algo["gamma"] <= 0.999
        assert algo["n_step"] in (1, 3, 5) and algo["target_network_update_freq"] in (10, 500, 2000)
        assert algo["training_intensity"] in (8, 16, 32, 64)
        assert algo["lr_schedule"] == [[0, algo["lr"]], [512, 0.0]]  # annealed to 0 over the trial's budget
        params[job] = {f"algo.{key}": algo[key]
                       for key in ("lr", "gamma", "n_step", "target_network_update_freq", "training_intensity")}
        rows = read_metrics(sweep_dir / job)
        assert rows[-1]["num_learner_updates_lifetime"] > 0
        objectives[job] = float(OBJECTIVE_LINE.search((sweep_dir / job / "rlrun.log").read_text()).group(1))
        assert objectives[job] == rows[-1]["evaluation/episode_return_mean"]
    assert params["0"] != params["1"]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(objectives.values())
    assert results["best_params"] in [pytest.approx(p) for p in params.values()]

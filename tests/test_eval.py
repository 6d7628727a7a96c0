"""Evaluation: periodic `evaluation/*` metrics, the `rlrun-eval` CLI (report, video) and TensorBoard hparams."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hydra
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.api import train
from rlrun.cli_eval import EXIT_USAGE
from rlrun.config.errors import ConfigError
from rlrun.config.schema import register_schemas
from rlrun.config.validation import validate_run
from rlrun.run.recorder import read_metrics
from rlrun.run.video import mp4_available

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("eval")

RLRUN = str(Path(sys.executable).with_name("rlrun"))
RLRUN_EVAL = str(Path(sys.executable).with_name("rlrun-eval"))
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONUNBUFFERED": "1"}
EPISODES = 4
EVAL_KEYS = ("episode_return_mean", "episode_return_std", "episode_return_min", "episode_return_max",
             "episode_len_mean", "episode_len_min", "episode_len_max", "num_episodes")
MAGIC = {".gif": (0, b"GIF89a"), ".mp4": (4, b"ftyp")}

# (name, rlrun-eval arguments after checkpoint=<final checkpoint>)
EVAL_CASES = {
    "plain": [f"episodes={EPISODES}"],
    "gif": ["episodes=2", "video=true", "video_format=gif"],
    "auto": ["episodes=2", "video=true", "video_episodes=2", "seed=3"],
    "unknown-key": ["episodes=2", "render=true"],
    "bad-value": ["episodes=zero"],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """4 iterations with an evaluation and a checkpoint every 2.

    Made in this process (`rlrun.train` writes the CLI's run directory, without a new interpreter's imports);
    every `rlrun-eval` of it is a real subprocess.
    """
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    train("stop.timesteps=null", "stop.iterations=4", "env_runners.num_envs_per_runner=4",
          "algo.train_batch_size=256", "algo.minibatch_size=64", "algo.num_epochs=2", "logger.console=plain",
          "evaluation.every_iterations=2", f"evaluation.episodes={EPISODES}", "checkpoint.every_iterations=2",
          f"hydra.run.dir={run_dir}")
    return run_dir


@pytest.fixture(scope="module")
def evals(run_dir: Path) -> dict[str, subprocess.CompletedProcess]:
    """Every EVAL_CASES command, run concurrently on the run's final checkpoint."""
    final = run_dir / "checkpoints" / "final"

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([RLRUN_EVAL, f"checkpoint={final}", *args], capture_output=True, text=True,
                              timeout=240, cwd=run_dir.parent, env=ENV)

    with ThreadPoolExecutor(3) as pool:
        return dict(zip(EVAL_CASES, pool.map(run, EVAL_CASES.values()), strict=True))


def report_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    path = re.search(r"^report\s+(\S+)$", proc.stdout, re.MULTILINE).group(1)
    return json.loads(Path(path).read_text())


def test_periodic_evaluation_metrics(run_dir: Path) -> None:
    rows = read_metrics(run_dir)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        evaluated = row["training_iteration"] % 2 == 0
        assert all((f"evaluation/{key}" in row) == evaluated for key in EVAL_KEYS), row
    last = rows[-1]
    assert last["evaluation/num_episodes"] == EPISODES
    for stat in ("return", "len"):
        low, mean, high = (last[f"evaluation/episode_{stat}_{s}"] for s in ("min", "mean", "max"))
        assert low <= mean <= high


def test_rlrun_eval_prints_and_saves_the_run_s_evaluation(run_dir: Path, evals) -> None:
    proc = evals["plain"]
    report = report_of(proc)
    assert Path(report["checkpoint"]) == run_dir / "checkpoints" / "final" and report["iteration"] == 4
    assert len(report["episode_returns"]) == len(report["episode_lens"]) == report["num_episodes"] == EPISODES
    assert report["episode_return_mean"] == pytest.approx(sum(report["episode_returns"]) / EPISODES)
    assert report["episode_len_max"] == max(report["episode_lens"]) and report["video"] is None
    # Same weights, seed, evaluation runner and episode count as the run's own final evaluation.
    assert report["episode_return_mean"] == read_metrics(run_dir)[-1]["evaluation/episode_return_mean"]
    for label, key in (("mean", "episode_return_mean"), ("std", "episode_return_std"),
                       ("min", "episode_return_min"), ("max", "episode_return_max")):
        assert f"{label} {report[key]:.2f}" in proc.stdout
    assert f"length  mean {report['episode_len_mean']:.1f}  min {report['episode_len_min']}" in proc.stdout
    assert Path(re.search(r"^report\s+(\S+)$", proc.stdout, re.MULTILINE).group(1)).parent == run_dir


@pytest.mark.parametrize("case", ["gif", "auto"])
def test_rlrun_eval_video(run_dir: Path, evals, case: str) -> None:
    report = report_of(evals[case])
    video = Path(report["video"])
    assert video.parent == run_dir / "videos" and video.stat().st_size > 1000
    expected = ".gif" if case == "gif" or not mp4_available() else ".mp4"
    assert video.suffix == expected
    offset, magic = MAGIC[expected]
    assert video.read_bytes()[offset:offset + len(magic)] == magic
    assert f"video   {video}" in evals[case].stdout
    assert "error" not in evals[case].stderr.lower()


@pytest.mark.parametrize(("case", "expected"), [
    ("unknown-key", ["render=true", "checkpoint, episodes, seed, video, video_episodes, video_format"]),
    ("bad-value", ["episodes", "integer", "zero"]),
])
def test_rlrun_eval_bad_argument_is_one_line(evals, case: str, expected: list[str]) -> None:
    proc = evals[case]
    assert proc.returncode == EXIT_USAGE
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun-eval: error: "), proc.stderr
    for text in expected:
        assert text in lines[0]


def test_rlrun_eval_of_a_run_dir_uses_its_best_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run([RLRUN_EVAL, f"checkpoint={run_dir}", "episodes=1"], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path, env=ENV)
    assert Path(report_of(proc)["checkpoint"]) == run_dir / "checkpoints" / "best"


def test_tensorboard_has_the_config_as_hparams(run_dir: Path) -> None:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["algo.train_batch_size"].number_value == 256
    assert hparams["env.id"].string_value == "CartPole-v1"
    assert hparams["logger.console"].string_value == "plain"
    assert hparams["stop.timesteps"].string_value == "null"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert tags == {"env_runners/episode_return_mean", "evaluation/episode_return_mean"}
    assert tags <= set(events.Tags()["scalars"])


@pytest.mark.parametrize(("override", "expected"), [
    ("evaluation.episodes=0", "evaluation.episodes must be >= 1"),
    ("evaluation.every_iterations=-1", "evaluation.every_iterations must be >= 0"),
    ("checkpoint.keep_last=-2", "checkpoint.keep_last must be >= 0 or null"),
])
def test_evaluation_and_retention_keys_are_validated(override: str, expected: str) -> None:
    register_schemas(algorithm_schemas())
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        cfg = hydra.compose(config_name="config", overrides=[override])
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate_run(cfg)

"""Every algorithm on pixels (issue 25): uint8 image observations from the env to the learner, exact resume on
pixels, the Atari presets as shipped, and the CUDA path.

The CLI runs use tiny images (`pixel_envs`, 8x8 for `model.cnn=small`) and name a learner of
tests/pixel_learners.py (`algo.learner_class`): each algorithm's own learner, which also writes down the dtype
and device of every observation column its loss is handed. A float column there means some step between the
env and the learner's device (sampling, replay, a dataset, Ray's object store) cast the pixels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import RLRUN, pythonpath_with_tests
from pixel_learners import PROBE_ENV, PPOProbe, read_probe
from test_resume import deterministic

from rlrun.algorithms.dqn import DQNConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.columns import Columns
from rlrun.run.recorder import read_metrics

# A module fixture (one PPO run feeds the uint8 check and the recording for BC and MARWIL): one worker runs the module.
pytestmark = pytest.mark.xdist_group("pixels")

RLRUN_EVAL = str(Path(RLRUN).with_name("rlrun-eval"))
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONUNBUFFERED": "1",
                                                                      "PYTHONPATH": pythonpath_with_tests()}
# 8x8 grey noise frames and the small CNN of the model catalog.
PIXELS = ("env.id=pixel_envs:PixelEnv", "env.env_config={size:8}", "model.cnn=small")
# One torch thread: a CNN's learner otherwise takes every core, and tiny batches on two OpenMP threads of a busy
# two-core machine (make test runs two workers) spin for tens of milliseconds a forward pass.
TINY = ("stop.timesteps=null", "env_runners.num_envs_per_runner=2", "evaluation.episodes=1", "logger.console=plain",
        "learners.num_threads=1")
PPO = ("algo=ppo", "algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=2",
       "algo.learner_class=pixel_learners:PPOProbe")
# A tiny CNN for ALE frames in the in-process tests: the Nature CNN would cost most of their time.
TINY_CNN = [[8, 8, 8], [8, 4, 4]]


def rlrun(cwd: Path, *args: str, probe: Path | None = None, command: str = RLRUN,
          timeout: float = 300) -> subprocess.CompletedProcess:
    env = ENV | ({PROBE_ENV: str(probe)} if probe else {})
    proc = subprocess.run([command, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def train(run_dir: Path, *args: str, probe: Path | None = None) -> subprocess.CompletedProcess:
    return rlrun(run_dir.parent, *TINY, *args, f"hydra.run.dir={run_dir}", probe=probe)


def assert_learner_saw_uint8(probe: Path, columns: set[str], modules: set[str] | None = None,
                             device: str = "cpu", frame: tuple[int, ...] = (8, 8)) -> list[dict[str, Any]]:
    """The loss was handed only uint8 observation columns (`columns`, of each of `modules`) of `frame`-shaped
    images, on the learner's `device`, where its module lives too."""
    records = read_probe(probe)
    assert records, "the learner never computed a loss"
    assert {r["column"] for r in records} == columns, records
    assert {r["module"] for r in records} == (modules or {"default_policy"}), records
    for record in records:
        assert record["dtype"] == "uint8", record
        assert record["device"].startswith(device) and record["module_device"].startswith(device), record
        if record["column"] != Columns.STATE:  # a central value function's state is flat
            assert tuple(record["shape"][-len(frame):]) == frame, record
    return records


def replay_buffer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / "replay_buffer.pt", weights_only=True)


def assert_equal_state(a: Any, b: Any, where: str = "") -> None:
    """Nested dicts of arrays: the same keys, and arrays of the same dtype, shape and bytes."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_equal_state(a[key], b[key], f"{where}/{key}")
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where


# -- PPO on pixels: uint8 to the learner, and an exact resume -----------------------------------------


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 PPO iterations on 8x8 pixels through the CLI, its learner writing a probe."""
    tmp = tmp_path_factory.mktemp("ppo_pixels")
    train(tmp / "run", *PIXELS, *PPO, "stop.iterations=2", probe=tmp / "probe.jsonl")
    return {"run": tmp / "run", "probe": tmp / "probe.jsonl", "tmp": tmp}


def test_ppo_trains_on_uint8_pixels(ppo_run: dict[str, Path]) -> None:
    assert_learner_saw_uint8(ppo_run["probe"], {Columns.OBS})
    last = read_metrics(ppo_run["run"])[-1]
    assert np.isfinite(last["learners/default_policy/total_loss"]) and "evaluation/episode_return_mean" in last


def flat(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A train() result as `a/b/c` keys, without wall-clock ones."""
    rows: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            rows.update(flat(value, f"{prefix}{key}/"))
        else:
            rows[f"{prefix}{key}"] = value
    return deterministic(rows)


def pixel_ppo() -> PPOConfig:
    return (PPOConfig().environment("pixel_envs:PixelEnv", env_config={"size": 8})
            .env_runners(num_envs_per_env_runner=2).learners(num_threads_per_learner=1)
            .rl_module(model_config={"cnn": "small"})
            .training(train_batch_size=64, minibatch_size=32, num_epochs=2).debugging(seed=0))


def test_ppo_on_pixels_resumes_exactly(tmp_path: Path) -> None:
    """3 iterations straight == 2, a checkpoint, and 1 more in a new algorithm restored from it: the pixel envs'
    episodes in flight, the RNGs and the weights come back exactly (`rlrun resume=` restores the same state; the
    CLI's side of it is tests/test_resume.py's)."""
    straight = pixel_ppo().build_algo()
    first = pixel_ppo().build_algo()
    second = None
    try:
        expected = [flat(straight.train()) for _ in range(3)]
        got = [flat(first.train()) for _ in range(2)]
        first.save_to_path(tmp_path / "checkpoint")
        second = pixel_ppo().build_algo()
        second.restore_from_path(tmp_path / "checkpoint")
        got += [flat(second.train())]
        assert len(got[2]) > 10 and np.isfinite(got[2]["learners/default_policy/total_loss"])
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            assert a == b, f"iteration {i + 1} differs"
        weights = straight.learner_group.get_weights()["default_policy"]
        for name, value in second.learner_group.get_weights()["default_policy"].items():
            assert np.array_equal(value, weights[name]), name
    finally:
        for algo in (straight, first, second):
            if algo is not None:
                algo.stop()


# -- DQN on pixels: every option, uint8 in the buffer and the learner ---------------------------------


def test_dqn_with_n_step_double_dueling_prioritized_replay_on_uint8_pixels(tmp_path: Path) -> None:
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, *PIXELS, "algo=dqn", "algo.n_step=3", "algo.double_q=true", "algo.dueling=true",
          "algo.replay_buffer.type=prioritized", "algo.replay_buffer.capacity=1000", "algo.train_batch_size=16",
          "algo.num_steps_sampled_before_learning_starts=16", "algo.learner_class=pixel_learners:DQNProbe",
          "checkpoint.replay_buffer=true", "stop.iterations=8", probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS, Columns.NEXT_OBS})
    assert np.isfinite(read_metrics(run_dir)[-1]["learners/default_policy/total_loss"])
    storage = replay_buffer_state(run_dir / "checkpoints" / "final")["storage"]
    assert storage[Columns.OBS].dtype == torch.uint8 and storage[Columns.OBS].shape[1:] == (2, 8, 8)
    assert storage[Columns.OBS].any(), "no frame was stored"


# -- DQN on ALE Pong: the uint8 frame buffer survives a checkpoint ------------------------------------


def pong_dqn() -> DQNConfig:
    return (DQNConfig().environment("ALE/Pong-v5", atari={"screen_size": 36})
            .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=16).learners(num_threads_per_learner=1)
            .rl_module(model_config={"conv_filters": TINY_CNN})
            .training(train_batch_size=16, num_steps_sampled_before_learning_starts=32, n_step=3,
                      replay_buffer={"capacity": 1000})
            .debugging(seed=0))


def test_dqn_on_pong_resumes_with_its_uint8_frame_buffer(tmp_path: Path) -> None:
    """The restored buffer is the saved one byte for byte (each frame once, the kept reset padding, priorities,
    counters, RNG) and so are the weights. The ALE cannot restore games in flight: the restored run starts new
    games, and the buffer cuts each stream where the old games stop instead of linking them to the new ones,
    while the uninterrupted run's games go on."""
    algo = pong_dqn().build_algo()
    restored = None
    try:
        for _ in range(3):
            algo.train()
        assert algo.counters["num_learner_updates_lifetime"] > 0
        saved = algo.replay_buffer.get_state()
        frames = saved["storage"][Columns.OBS]
        assert frames.dtype == np.uint8 and frames.shape[1:] == (2, 1, 36, 36), frames.shape  # one frame, not 4
        algo.save_to_path(tmp_path / "checkpoint")

        restored = pong_dqn().build_algo()
        restored.restore_from_path(tmp_path / "checkpoint")
        assert_equal_state(restored.replay_buffer.get_state(), saved)
        for name, value in algo.learner_group.get_weights()["default_policy"].items():
            assert np.array_equal(value, restored.learner_group.get_weights()["default_policy"][name]), name

        newest = (int(saved["counters"][1]) - 1) % frames.shape[0]  # the write position's previous row
        stored = int(saved["counters"][2])
        assert saved["storage"][Columns.LOSS_MASK][newest].all()  # both games were in flight
        for run in (algo, restored):
            run.train()
            state = run.replay_buffer.get_state()["storage"]
            assert state[Columns.OBS].dtype == np.uint8
            np.testing.assert_array_equal(state[Columns.OBS][:stored], frames[:stored])
        assert algo.replay_buffer.get_state()["storage"][Columns.LOSS_MASK][newest].all()
        assert not restored.replay_buffer.get_state()["storage"][Columns.LOSS_MASK][newest].any()
        batch = restored.replay_buffer.sample(64, n_step=3, gamma=0.99)
        assert batch[Columns.OBS].dtype == np.uint8 and batch[Columns.OBS].shape[1:] == (4, 36, 36)
    finally:
        algo.stop()
        if restored is not None:
            restored.stop()


# -- the other algorithms through the CLI --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "args"), [
    ("impala", ["algo.train_batch_size=64", "algo.learner_class=pixel_learners:IMPALAProbe"]),
    ("appo", ["algo.train_batch_size=64", "algo.learner_class=pixel_learners:APPOProbe"]),
])
def test_async_algorithms_train_on_uint8_pixels(tmp_path: Path, algo: str, args: list[str]) -> None:
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, *PIXELS, f"algo={algo}", *args, "stop.iterations=3", probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS})
    assert np.isfinite(read_metrics(run_dir)[-1]["learners/default_policy/total_loss"])


@pytest.mark.slow
def test_sac_trains_on_uint8_pixels_with_box_actions(tmp_path: Path) -> None:
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, "env.id=pixel_envs:PixelBoxEnv", "model.cnn=small", "algo=sac", "algo.train_batch_size=16",
          "algo.training_intensity=2", "algo.num_steps_sampled_before_learning_starts=32",
          "algo.replay_buffer.capacity=1000", "algo.learner_class=pixel_learners:SACProbe", "stop.iterations=8",
          probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS, Columns.NEXT_OBS}, frame=(3, 8, 8))
    assert np.isfinite(read_metrics(run_dir)[-1]["learners/default_policy/total_loss"])
    storage = replay_buffer_state(run_dir / "checkpoints" / "final")["storage"]
    assert storage[Columns.OBS].dtype == torch.uint8


@pytest.mark.slow
def test_multi_agent_ppo_trains_on_uint8_pixels(tmp_path: Path) -> None:
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, "env.id=multi_agent_envs:PixelAgentsEnv", "model.cnn=small", "multi_agent.policies=independent",
          *PPO, "stop.iterations=2", probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS}, modules={"left", "right"}, frame=(1, 8, 8))


def test_mappo_central_critic_sees_the_agents_pixels_as_uint8_scaled_like_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `model.central_value=true` and no env `state()`, the global state is the agents' frames side by side:
    it stays uint8 to the learner, and the critic scales it to [0, 1] as each agent's CNN scales its frame (it
    was float32 of 0..255 beside CNN features of 0..1). In-process: the multi-agent CLI run is a slow test."""
    probe = tmp_path / "probe.jsonl"
    monkeypatch.setenv(PROBE_ENV, str(probe))
    config = (PPOConfig().environment("multi_agent_envs:PixelAgentsEnv")
              .env_runners(num_envs_per_env_runner=2).learners(num_threads_per_learner=1)
              .rl_module(model_config={"cnn": "small", "central_value": True})
              .training(train_batch_size=64, minibatch_size=32, num_epochs=1, learner_class=PPOProbe))
    algo = config.build_algo()
    try:
        assert np.isfinite(algo.train()["learners"]["default_policy"]["total_loss"])
        records = assert_learner_saw_uint8(probe, {Columns.OBS, Columns.STATE}, frame=(1, 8, 8))
        assert {tuple(r["shape"][1:]) for r in records if r["column"] == Columns.STATE} == {(2 * 8 * 8,)}
        module = algo.learner_group._learner.module["default_policy"]
        state_space = module.observation_space["state"]
        assert state_space.dtype == np.uint8
        state = torch.from_numpy(np.stack([state_space.sample() for _ in range(4)]))
        obs = torch.from_numpy(np.stack([module.observation_space["obs"].sample() for _ in range(4)]))
        with torch.no_grad():
            torch.testing.assert_close(module.vf(obs, state), module.vf(obs, state.float() / 255))
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["bc", "marwil"])
def test_offline_algorithms_train_on_a_recorded_uint8_pixel_dataset(ppo_run: dict[str, Path], tmp_path: Path,
                                                                     algo: str) -> None:
    """`rlrun-eval ... record=` writes the PPO run's episodes; BC and MARWIL read them back as uint8 rows."""
    dataset = ppo_run["tmp"] / "pixels-ppo-v0"
    if not dataset.exists():  # the first of the two cases records it (one worker runs the module)
        rlrun(ppo_run["tmp"], f"checkpoint={ppo_run['run']}", "episodes=20", "explore=true",
              f"record={dataset}", command=RLRUN_EVAL)
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, f"algo={algo}", f"offline.dataset={dataset}", "model.cnn=small", "algo.train_batch_size=32",
          f"algo.learner_class=pixel_learners:{algo.upper()}Probe", "stop.iterations=3", probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS})
    assert np.isfinite(read_metrics(run_dir)[-1]["learners/default_policy/total_loss"])


# -- the Atari presets as shipped ---------------------------------------------------------------------

# Only stop.* and sizes change: 2 envs, small batches, short games (an untrained Pong game lasts ~800 steps).
PRESET_SIZES = {
    "pong_ppo": ["algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1"],
    "breakout_ppo": ["algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1"],
    "pong_dqn": ["algo.num_steps_sampled_before_learning_starts=16", "algo.replay_buffer.capacity=1000",
                 "algo.train_batch_size=16"],
    "pong_appo": ["algo.train_batch_size=64", "env_runners.num=1"],
}
EPISODE_STEPS = 120


@pytest.mark.slow
@pytest.mark.parametrize("preset", [
    # pong_appo runs a learner actor and an env runner actor on the Ray instance its rlrun process starts.
    pytest.param(p, marks=[pytest.mark.ray, pytest.mark.own_ray] if p == "pong_appo" else []) for p in PRESET_SIZES])
def test_atari_preset_trains_and_its_checkpoint_plays_the_game_on_video(tmp_path: Path, preset: str) -> None:
    run_dir = tmp_path / "run"
    train(run_dir, f"experiment={preset}", *PRESET_SIZES[preset], "stop.iterations=2",
          f"env.max_episode_steps={EPISODE_STEPS}")
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert re.search(r"^  atari:\n", config, re.MULTILINE), "the preset lost env=atari"
    proc = rlrun(tmp_path, f"checkpoint={run_dir}", "episodes=1", "video=true", command=RLRUN_EVAL)
    report = json.loads(Path(re.search(r"^report\s+(\S+)$", proc.stdout, re.MULTILINE).group(1)).read_text())
    # The real game: one episode of whole lives (no life-loss terminal cut it), Pong's or Breakout's own score.
    assert report["episode_lens"] == [EPISODE_STEPS], report
    assert report["episode_returns"][0] == int(report["episode_returns"][0])
    video = Path(report["video"])
    assert video.parent == run_dir / "videos" and video.stat().st_size > 1000


# -- the GPU ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pong_ppo_learner_on_cuda_gets_uint8_frames(tmp_path: Path) -> None:
    """`experiment=pong_ppo learners.num_gpus_per_learner=1`: the module lives on CUDA, and the frames reach it
    as uint8 (4x fewer bytes to copy); the encoder makes them float there."""
    run_dir, probe = tmp_path / "run", tmp_path / "probe.jsonl"
    train(run_dir, "experiment=pong_ppo", "learners.num_gpus_per_learner=1", *PRESET_SIZES["pong_ppo"],
          "algo.learner_class=pixel_learners:PPOProbe", "stop.iterations=3", f"env.max_episode_steps={EPISODE_STEPS}",
          probe=probe)
    assert_learner_saw_uint8(probe, {Columns.OBS}, device="cuda", frame=(4, 84, 84))
    assert np.isfinite(read_metrics(run_dir)[-1]["learners/default_policy/total_loss"])

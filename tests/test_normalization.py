"""Observation/reward normalisation (rlrun/env/normalization.py) as env-runner state.

The math (merged streams equal one stream, SB3's reward scaling), its place in the
env runner's state (round trip, resume, checkpoints without it), evaluation that uses
but never updates the statistics, their sync across Ray env runners, and `rlrun-eval`
of a normalised run. Every run is a few tiny iterations.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrun.algorithms.algorithm import load_env_runner_state
from rlrun.algorithms.ppo import PPOConfig
from rlrun.algorithms.registry import get_algorithm_config_class
from rlrun.api import train as rlrun_train
from rlrun.config.errors import ConfigError
from rlrun.core import DEFAULT_MODULE_ID
from rlrun.env import EnvRunner, NormalizationSpec
from rlrun.env.env_runner_group import normalization_in_state
from rlrun.env.normalization import EPSILON, Normalizer, RunningMeanStd
from rlrun.run.video import record_video

RLRUN = str(Path(sys.executable).with_name("rlrun"))
RLRUN_EVAL = str(Path(sys.executable).with_name("rlrun-eval"))
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONUNBUFFERED": "1"}
NORMALISED = {"observation_filter": "MeanStdFilter", "normalize_rewards": True}
BOX3 = gym.spaces.Box(-np.inf, np.inf, (3,))


def config(env: str = "Pendulum-v1", seed: int = 0, **normalization) -> PPOConfig:
    return (
        PPOConfig()
        .environment(env)
        .env_runners(num_envs_per_env_runner=4, **{**NORMALISED, **normalization})
        .training(train_batch_size=128, minibatch_size=64, num_epochs=1)
        .debugging(seed=seed)
    )


def counts(stats: dict) -> dict[str, float]:
    return {name: float(part["count"]) for name, part in stats.items()}


def assert_stats_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name]["count"] == b[name]["count"], name
        np.testing.assert_allclose(a[name]["mean"], b[name]["mean"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a[name]["var"], b[name]["var"], rtol=1e-10, atol=1e-12)


# -- the math -------------------------------------------------------------------------


def test_merged_streams_equal_one_stream() -> None:
    """Two runners' deltas merged by a driver equal the statistics of all their rows as one stream."""
    rng = np.random.default_rng(0)
    rows = rng.normal(3.0, [1.0, 50.0, 1e-3], size=(1000, 3))
    one = RunningMeanStd((3,))
    for chunk in np.array_split(rows, 7):
        one.update(chunk)
    np.testing.assert_allclose(one.mean, rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(one.var, rows.var(axis=0), rtol=1e-9)

    runners = [Normalizer(NormalizationSpec(observation_filter="MeanStdFilter"), BOX3, 1)
               for _ in range(2)]
    for i, chunk in enumerate(np.array_split(rows, 9)):  # unequal shares, interleaved
        runners[0 if i % 3 else 1].observations(chunk.astype(np.float32), update=True)
    driver = Normalizer(NormalizationSpec(observation_filter="MeanStdFilter"), BOX3, 0).stats
    for runner in runners:
        driver.merge(runner.pop_delta())
    merged = driver.get_state()["obs"]
    assert merged["count"] == len(rows)
    np.testing.assert_allclose(merged["mean"], rows.astype(np.float32).mean(axis=0, dtype=np.float64), rtol=1e-9)
    np.testing.assert_allclose(merged["var"], rows.astype(np.float32).var(axis=0, dtype=np.float64), rtol=1e-6)
    # After the sync a runner uses the merged statistics plus what it saw since it reported.
    runners[0].sync(driver.get_state())
    assert_stats_equal(runners[0].stats.get_state(), driver.get_state())


def test_filtered_observations_and_scaled_rewards_follow_sb3_vecnormalize() -> None:
    """obs -> clip((obs - mean) / sqrt(var + eps)); reward -> clip(r / sqrt(var(R) + eps)) with R = gamma R + r."""
    spec = NormalizationSpec(observation_filter="MeanStdFilter", normalize_rewards=True, clip_observations=2.0,
                             clip_normalized_rewards=3.0, gamma=config().gamma)
    norm = Normalizer(spec, gym.spaces.Box(-np.inf, np.inf, (2,)), 2)
    rng = np.random.default_rng(1)
    obs, seen_obs, returns, seen_returns = None, [], np.zeros(2), []
    for step in range(20):
        obs = rng.normal(5.0, 4.0, size=(2, 2)).astype(np.float32)
        out = norm.observations(obs, update=True)
        seen_obs.append(obs)
        all_obs = np.concatenate(seen_obs).astype(np.float64)
        expected = np.clip((obs - all_obs.mean(0)) / np.sqrt(all_obs.var(0) + EPSILON), -2.0, 2.0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)

        reward = rng.normal(-10.0, 5.0, size=2)
        live, done = np.array([True, step % 5 != 0]), np.array([step % 7 == 6, False])
        returns[live] = returns[live] * config().gamma + reward[live]
        seen_returns.extend(returns[live])
        expected_r = np.clip(reward / np.sqrt(np.var(seen_returns) + EPSILON), -3.0, 3.0)
        np.testing.assert_allclose(norm.rewards(reward, live, done, update=True), expected_r, rtol=1e-9)
        returns[done] = 0.0
    assert np.abs(out).max() <= 2.0


# -- env runner state -------------------------------------------------------------------


def test_episode_returns_stay_in_raw_reward_units() -> None:
    """CartPole pays 1 per step: the batch holds scaled rewards, the reported returns the episode lengths."""
    runner = EnvRunner(config("CartPole-v1").env_runner_spec())
    try:
        batch = runner.sample(num_timesteps=400)
        metrics = runner.get_metrics()
    finally:
        runner.stop()
    assert metrics["episode_returns"] and metrics["episode_returns"] == pytest.approx(metrics["episode_lens"])
    live = batch["loss_mask"]
    assert not np.allclose(batch["rewards"][live], 1.0)
    assert np.abs(batch["obs"]).max() <= 10.0


def test_env_runner_state_round_trip_continues_exactly() -> None:
    first, second = EnvRunner(config().env_runner_spec()), EnvRunner(config(seed=5).env_runner_spec())
    try:
        first.sample()
        state = first.get_state()
        assert counts(state["normalization"]["stats"]) == {"obs": 4 * 33, "returns": 4 * 32}
        second.set_state(state)
        second.set_weights({DEFAULT_MODULE_ID: first.module.get_state()})
        a, b = first.sample(), second.sample()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert_stats_equal(first.get_normalization(), second.get_normalization())
    finally:
        first.stop()
        second.stop()


def test_resume_restores_the_statistics_and_continues_exactly(tmp_path: Path) -> None:
    algo = config().build_algo()
    try:
        algo.train()
        algo.save_to_path(tmp_path / "ckpt")
        expected = algo.train()
        expected_stats = algo.env_runner_group.get_normalization()
    finally:
        algo.stop()
    resumed = config(seed=9).build_algo()
    try:
        resumed.restore_from_path(tmp_path / "ckpt")
        result = resumed.train()
        assert_stats_equal(resumed.env_runner_group.get_normalization(), expected_stats)
    finally:
        resumed.stop()
    for key in ("num_env_steps_sampled_lifetime", "learners"):
        assert result[key] == expected[key], key


def test_checkpoint_without_statistics_still_loads(tmp_path: Path) -> None:
    """A checkpoint with normalisation off has the env_runners.pt of older rlrun: it restores, statistics fresh."""
    plain = config(observation_filter="NoFilter", normalize_rewards=False).build_algo()
    try:
        plain.train()
        plain.save_to_path(tmp_path / "ckpt")
    finally:
        plain.stop()
    algo = config().build_algo()
    try:
        algo.restore_from_path(tmp_path / "ckpt")
        assert counts(algo.env_runner_group.get_normalization()) == {"obs": 0, "returns": 0}
        algo.train()
    finally:
        algo.stop()


def test_evaluation_uses_the_statistics_and_never_updates_them() -> None:
    algo = config().build_algo()
    try:
        algo.train()
        before = algo.env_runner_group.get_normalization()
        algo.evaluate(num_episodes=2)
        eval_stats = algo._eval_runner.get_normalization()
        after = algo.env_runner_group.get_normalization()
    finally:
        algo.stop()
    assert counts(before)["obs"] > 0
    assert_stats_equal(eval_stats, before)  # 2 x 200 evaluation steps added nothing
    assert_stats_equal(after, before)


def test_a_video_shows_the_policy_the_filtered_observations(tmp_path: Path) -> None:
    """rlrun-eval video=true: the filmed policy sees observations through the frozen filter, as in evaluation.

    A mean of 1000 puts every filtered CartPole observation at -clip_observations, so the
    policy's first layer must see nothing else; raw observations are never below -5."""
    cfg = config(env="CartPole-v1", observation_filter="MeanStdFilter", normalize_rewards=False, clip_observations=2.0)
    runner = EnvRunner(cfg.env_runner_spec())
    runner.sync_normalization({"obs": {"count": 1e6, "mean": np.full(4, 1000.0), "var": np.ones(4)}})
    first_layer = next(m for m in runner.module.modules() if isinstance(m, torch.nn.Linear))
    seen: list[torch.Tensor] = []
    first_layer.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].clone()))
    record_video(runner.module, runner.normalizer, "CartPole-v1", episodes=1, seed=0,
                 stem=tmp_path / "video", video_format="gif")
    assert seen and all(torch.equal(x, torch.full_like(x, -2.0)) for x in seen)
    assert counts(runner.get_normalization())["obs"] == 1e6, "filming updated the statistics"


def test_recorded_episodes_hold_the_env_s_own_observations_and_rewards() -> None:
    """rlrun-eval record=: a dataset holds what the env returned, not the filtered/scaled values the policy saw.

    With a mean of 1000 every filtered observation is -clip_observations, and with a return variance
    of 100 every CartPole reward of 1 is scaled to 0.1; the recording must hold neither."""
    cfg = config(env="CartPole-v1", clip_observations=2.0)
    runner = EnvRunner(cfg.env_runner_spec())
    runner.sync_normalization({"obs": {"count": 1e6, "mean": np.full(4, 1000.0), "var": np.ones(4)},
                               "returns": {"count": 1e6, "mean": np.array(0.0), "var": np.array(100.0)}})
    episodes = runner.sample_episodes(4, record=True)
    for episode, ret, length in zip(episodes["episodes"], episodes["episode_returns"], episodes["episode_lens"]):
        assert len(episode.observations) == length + 1
        np.testing.assert_array_equal(episode.rewards, np.ones(length))
        assert episode.rewards.sum() == ret
        assert np.all(np.abs(episode.observations[0]) <= 0.05), "not CartPole's reset state"
        # Before its last step an episode's pole is within CartPole's termination angle (0.2095 rad).
        assert np.all(np.abs(episode.observations[:-1, 2]) <= 0.2095), "not CartPole's pole angles"


@pytest.mark.parametrize(("algo", "env"), [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1"), ("impala", "CartPole-v1"),
                                         ("appo", "CartPole-v1")])
def test_every_algorithm_samples_through_the_normalisation(algo: str, env: str) -> None:
    """The keys belong to the env runner, not to PPO: every real transition feeds the return statistics once."""
    config = get_algorithm_config_class(algo)().environment(env).env_runners(
        num_envs_per_env_runner=2, rollout_fragment_length=16, **NORMALISED
    ).training(train_batch_size=32, minibatch_size=32)
    built = config.build_algo()
    try:
        for _ in range(2):
            result = built.train()
        stats = built.env_runner_group.get_normalization()
    finally:
        built.stop()
    assert counts(stats) == {"obs": 2 * (1 + 2 * 16), "returns": result["num_env_steps_sampled_lifetime"]}


@pytest.mark.parametrize(("override", "expected"), [
    ({"observation_filter": "ZFilter"}, "env_runners.observation_filter must be one of ['NoFilter', 'MeanStdFilter']"),
    ({"clip_observations": 0.0}, "env_runners.clip_observations must be > 0"),
    ({"clip_normalized_rewards": -1.0}, "env_runners.clip_normalized_rewards must be > 0"),
])
def test_bad_normalisation_keys_are_refused(override: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config(**override).validate()


# -- Ray env runners ---------------------------------------------------------------------


@pytest.mark.ray
def test_ray_env_runners_sync_their_statistics_through_the_driver(ray_cluster, tmp_path: Path) -> None:
    import ray

    algo = config().env_runners(num_env_runners=2).build_algo()
    try:
        algo.train()
        algo.train()
        driver = algo.env_runner_group.get_normalization()
        actors = algo.env_runner_group._remote._actors
        runners = ray.get([actors[i].get_normalization.remote() for i in (1, 2)])
        algo.evaluate(num_episodes=1)
        eval_stats = algo._eval_runner.get_normalization()
        algo.save_to_path(tmp_path / "ckpt")
        algo.train()
        algo.restore_from_path(tmp_path / "ckpt")
        restored = algo.env_runner_group.get_normalization()
        restored_runners = ray.get([actors[i].get_normalization.remote() for i in (1, 2)])
    finally:
        algo.stop()
    # 2 runners x 4 envs x (reset + 2 fragments of 16 steps), every one merged once.
    assert counts(driver) == {"obs": 2 * 4 * 33, "returns": 2 * 4 * 32}
    for runner in [*runners, eval_stats, restored, *restored_runners]:  # all use the merge of both
        assert_stats_equal(runner, driver)


# -- rlrun-eval ---------------------------------------------------------------------------


def test_rlrun_eval_of_a_normalised_run_uses_its_statistics(tmp_path: Path) -> None:
    """rlrun-eval reproduces the run's final evaluation only with the checkpoint's statistics loaded."""
    run_dir = tmp_path / "run"
    # The run is made in this process (the CLI's run directory without a new interpreter's imports); rlrun-eval,
    # the subject, is a real process of its own.
    rlrun_train("env=pendulum", "stop.timesteps=null", "stop.iterations=2", "env_runners.num_envs_per_runner=4",
                "env_runners.observation_filter=MeanStdFilter", "env_runners.normalize_rewards=true",
                "algo.train_batch_size=128", "algo.minibatch_size=64", "algo.num_epochs=1", "evaluation.episodes=2",
                "logger.console=plain", "logger.tensorboard=false", f"hydra.run.dir={run_dir}")
    logged = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    saved = normalization_in_state(load_env_runner_state(run_dir / "checkpoints" / "final"))
    assert saved is not None and counts(saved)["obs"] > 0
    proc = subprocess.run([RLRUN_EVAL, f"checkpoint={run_dir / 'checkpoints' / 'final'}", "episodes=2"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(Path(re.search(r"^report\s+(\S+)$", proc.stdout, re.MULTILINE).group(1)).read_text())
    assert report["episode_return_mean"] == pytest.approx(logged["evaluation/episode_return_mean"], rel=1e-9)

"""IMPALA: config checks, the loss against a hand computation, embedded learning, resume, and asynchronous
sampling with real Ray actors (policy lag, a crashed and a hung env runner replaced while the others go on)."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from test_config import build

from rlrun.algorithms.impala import IMPALAConfig
from rlrun.api import train as rlrun_train
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.config.errors import ConfigError
from rlrun.core.columns import DEFAULT_MODULE_ID, Columns
from rlrun.env.env_runner_actors import RESTART_SEED_STRIDE
from rlrun.run.recorder import read_metrics

GAMMA = 0.9


def cartpole_config(**training) -> IMPALAConfig:
    return (IMPALAConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=8)
            .training(**{"train_batch_size": 256, "lr": 1e-3, "entropy_coeff": 0.0, **training})
            .rl_module(model_config={"hiddens": [64, 64]}).debugging(seed=0))


# -- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize(("training", "expected"), [
    ({"broadcast_interval": -1}, "algo.broadcast_interval must be an integer >= 1"),
    ({"broadcast_interval": 0}, "algo.broadcast_interval must be an integer >= 1"),
    ({"vtrace_clip_rho_threshold": 0.0}, "algo.vtrace_clip_rho_threshold must be > 0"),
    ({"vtrace_clip_pg_rho_threshold": -1.0}, "algo.vtrace_clip_pg_rho_threshold must be > 0"),
    ({"lambda_": 1.5}, "algo.lambda_ must be in [0, 1]"),
    ({"vf_loss_coeff": -0.5}, "algo.vf_loss_coeff must be >= 0"),
    ({"entropy_coeff": -0.1}, "algo.entropy_coeff must be >= 0"),
    ({"minibatch_size": 16}, "algo.minibatch_size must hold at least learners.num (0) env columns of "
                             "env_runners.rollout_fragment_length (32) steps"),
])
def test_bad_keys_raise_one_config_error_naming_the_key(training: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        cartpole_config(**training).validate()
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_minibatch_size_defaults_to_the_train_batch() -> None:
    assert cartpole_config().minibatch_size == 256
    assert cartpole_config(minibatch_size=64).minibatch_size == 64


@pytest.mark.parametrize(("overrides", "expected"), [
    (["algo.broadcast_interval=-2"], ["algo.broadcast_interval must be an integer >= 1", "-2"]),
    (["algo.vtrace_clip_rho_threshold=0"], ["algo.vtrace_clip_rho_threshold must be > 0"]),
    (["algo.broadcast_interval=abc"], ["algo.broadcast_interval", "abc"]),
    (["algo.lambda_=1.5"], ["algo.lambda_ must be in [0, 1]", "1.5"]),
    (["env_runners.sample_timeout_s=0"], ["env_runners.sample_timeout_s must be > 0", "0"]),
    (["algo.sample_timeout_s=5"], ["algo.sample_timeout_s"]),  # an env-runner key, as in RLlib
])
def test_bad_overrides_are_rejected_in_one_line_before_anything_starts(overrides: list[str], expected: list[str]):
    with pytest.raises((ConfigError, HydraException, OmegaConfBaseException)) as error:
        build("algo=impala", *overrides)
    line = one_line(error.value)
    assert "\n" not in line and all(text in line for text in expected), line


def test_cli_refuses_a_bad_value_in_one_line_and_leaves_nothing(run_cli, tmp_path: Path) -> None:
    proc = run_cli("algo=impala", "algo.broadcast_interval=-1", "stop.iterations=1")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.splitlines() == [
        "rlrun: error: algo.broadcast_interval must be an integer >= 1 (learner updates between weight "
        "broadcasts) (got -1)"], proc.stderr
    assert not (tmp_path / "run").exists()


# -- the loss ------------------------------------------------------------------------------

def fixed_fragment() -> dict[str, np.ndarray]:
    """T=4 steps of B=2 envs: env 0 terminates at t=1 (t=2 is its autoreset row), env 1 is truncated at t=2."""
    return {
        Columns.OBS: np.arange(4 * 2 * 4, dtype=np.float32).reshape(4, 2, 4) / 40,
        Columns.ACTIONS: np.array([[0, 1], [1, 1], [0, 0], [1, 0]]),
        Columns.ACTION_LOGP: np.log(np.array([[0.4, 0.7], [0.5, 0.2], [0.9, 0.5], [0.3, 0.6]], dtype=np.float32)),
        Columns.REWARDS: np.array([[1.0, 0.5], [2.0, 1.0], [0.0, -1.0], [1.0, 0.0]], dtype=np.float32),
        Columns.TERMINATEDS: np.array([[0, 0], [1, 0], [0, 0], [0, 0]], dtype=bool),
        Columns.TRUNCATEDS: np.array([[0, 0], [0, 0], [0, 1], [0, 0]], dtype=bool),
        Columns.LOSS_MASK: np.array([[1, 1], [1, 1], [0, 1], [1, 0]], dtype=bool),
        Columns.BOOTSTRAP_OBS: np.full((2, 4), 0.5, dtype=np.float32),
    }


def hand_loss(frag: dict[str, np.ndarray], logits: np.ndarray, values: np.ndarray, bootstrap: np.ndarray,
              rho_bar: float, pg_rho_bar: float, vf_coeff: float, ent_coeff: float) -> float:
    """The paper's loss one (t, b) at a time: v_s by its sum, A_s = rho_pg (r + gamma v_{s+1} - V), masked means."""
    T, B = values.shape
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    logp = np.log(np.take_along_axis(probs, frag[Columns.ACTIONS][..., None], -1))[..., 0]
    ratio = np.exp(logp - frag[Columns.ACTION_LOGP])
    term, done = frag[Columns.TERMINATEDS], frag[Columns.TERMINATEDS] | frag[Columns.TRUNCATEDS]
    next_v = np.concatenate([values[1:], bootstrap[None]])
    delta = np.minimum(rho_bar, ratio) * (frag[Columns.REWARDS] + GAMMA * ~term * next_v - values)
    vs = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total, trace = 0.0, 1.0
            for t in range(s, T):
                total += GAMMA ** (t - s) * trace * delta[t, b]
                if done[t, b]:
                    break
                trace *= min(1.0, ratio[t, b])
            vs[s, b] = values[s, b] + total
    pg_loss = vf_loss = entropy = 0.0
    mask = frag[Columns.LOSS_MASK]
    for b in range(B):
        for s in range(T):
            if not mask[s, b]:
                continue
            v_next = vs[s + 1, b] if s + 1 < T and not done[s, b] else next_v[s, b]
            adv = min(pg_rho_bar, ratio[s, b]) * (frag[Columns.REWARDS][s, b] + GAMMA * (not term[s, b]) * v_next
                                                   - values[s, b])
            pg_loss -= adv * logp[s, b]
            vf_loss += 0.5 * (values[s, b] - vs[s, b]) ** 2
            entropy -= (probs[s, b] * np.log(probs[s, b])).sum()
    n = mask.sum()
    return (pg_loss + vf_coeff * vf_loss - ent_coeff * entropy) / n


def test_loss_matches_a_hand_computation() -> None:
    config = cartpole_config(gamma=GAMMA, vtrace_clip_rho_threshold=1.2, vtrace_clip_pg_rho_threshold=0.8,
                             vf_loss_coeff=0.7, entropy_coeff=0.05)
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    frag = fixed_fragment()
    batch = learner.build_train_batch(DEFAULT_MODULE_ID, frag)
    module = learner.module[DEFAULT_MODULE_ID]
    fwd_out = module.forward_train(batch)
    assert fwd_out[Columns.ACTION_DIST_INPUTS].shape == (2, 4, 2) and fwd_out[Columns.VF_PREDS].shape == (2, 4)
    loss = learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out)
    with torch.no_grad():
        bootstrap = module.compute_values({Columns.OBS: torch.as_tensor(frag[Columns.BOOTSTRAP_OBS])}).numpy()
    expected = hand_loss(frag, fwd_out[Columns.ACTION_DIST_INPUTS].detach().transpose(0, 1).double().numpy(),
                         fwd_out[Columns.VF_PREDS].detach().T.double().numpy(), bootstrap.astype(np.float64),
                         1.2, 0.8, 0.7, 0.05)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_an_update_trains_whole_env_columns_and_counts_env_steps() -> None:
    learner = cartpole_config(minibatch_size=8, num_epochs=2).build_learner(
        env=gym.make("CartPole-v1"))
    learner.build()
    result = learner.update(batch=fixed_fragment())[DEFAULT_MODULE_ID]
    # minibatch_size 8 = two columns of 4 steps: one minibatch per epoch, 2 epochs x 8 env steps.
    assert result["num_module_steps_trained"] == 16
    assert math.isfinite(result["policy_loss"]) and result["mean_vtrace_rho"] > 0


# -- training ------------------------------------------------------------------------------

def test_embedded_impala_learns_cartpole() -> None:
    algo = cartpole_config().build_algo()
    try:
        results = [algo.train() for _ in range(120)]
    finally:
        algo.stop()
    last = results[-1]
    assert last["env_runners"]["episode_return_mean"] > 80  # random play: about 22
    assert last["learners"][DEFAULT_MODULE_ID]["mean_vtrace_rho"] == pytest.approx(1.0, abs=1e-3)  # on-policy
    assert last["learner_group"]["policy_lag_max"] == 0
    assert last["num_env_steps_trained_lifetime"] == last["num_env_steps_sampled_lifetime"]
    assert last["num_learner_updates_lifetime"] == 120


def test_cli_resume_continues_with_no_duplicate_or_missing_rows(run_cli, tmp_path: Path) -> None:
    fast = ("algo=impala", "stop.timesteps=null", "env_runners.num_envs_per_runner=4", "algo.train_batch_size=128",
            "evaluation.episodes=2", "checkpoint.every_iterations=3")
    run_dir = tmp_path / "run"
    # The run to resume is made in this process (the CLI's run directory, without a new interpreter's imports);
    # the resume, the subject, is a real `rlrun` process.
    rlrun_train(*fast, "stop.iterations=7", "logger.console=plain", f"hydra.run.dir={run_dir}")
    checkpointed, original = read_metrics(run_dir)[5:7]  # iteration 6 (the last periodic checkpoint) and 7
    proc = run_cli(f"resume={run_dir / 'checkpoints' / 'checkpoint_000006'}", "stop.iterations=10",
                   run_dir=run_dir)
    assert proc.returncode == 0, proc.stderr
    rows = read_metrics(run_dir)
    assert [r["training_iteration"] for r in rows] == list(range(1, 11))
    assert rows[6]["num_learner_updates_lifetime"] == checkpointed["num_learner_updates_lifetime"] + 1
    # Embedded, IMPALA is synchronous: the resumed iteration 7 is the original one.
    for key in ("num_env_steps_sampled_lifetime", "num_env_steps_trained_lifetime", "num_episodes_lifetime",
                "learners/default_policy/total_loss"):
        assert rows[6][key] == original[key], key


# -- Ray: asynchronous sampling ------------------------------------------------------------

def ray_config(**training) -> IMPALAConfig:
    return (cartpole_config(**training).env_runners(num_env_runners=2, num_envs_per_env_runner=4)
            .learners(num_learners=1))


def test_ray_async_updates_report_lag_and_resume_continues_the_counters(ray_cluster, tmp_path: Path) -> None:
    algo = ray_config(broadcast_interval=2).build_algo()
    try:
        results = [algo.train() for _ in range(12)]
        algo.save_to_path(tmp_path / "ckpt")
        saved = results[-1]
    finally:
        algo.stop()
    lags = [r["learner_group"]["policy_lag_max"] for r in results]
    # Weights go out every 2nd update, so the 2nd batch trains after one update on weights of none: lag 1.
    # How stale a later fragment is depends on how slow its runner was (a loaded machine gave 9), but it
    # was sampled with weights of at least none, so its lag is at most the updates made before its batch.
    assert lags[:2] == [0, 1]
    assert all(0 <= lag <= updates_before for updates_before, lag in enumerate(lags))
    assert all(r["learner_group"]["num_updates_in_flight"] <= 3 for r in results)
    assert results[-1]["env_runners"]["weights_version"] in (10, 12)
    assert 0 < saved["num_env_steps_trained_lifetime"] <= saved["num_env_steps_sampled_lifetime"]
    # An iteration in which no update finished repeats the newest finished update's metrics.
    finished = np.cumsum([r["learner_group"]["num_updates_finished"] for r in results])
    assert finished[-1] >= 12 - 3
    assert [DEFAULT_MODULE_ID in r["learners"] for r in results] == [n > 0 for n in finished]
    assert "mean_vtrace_rho" in saved["learners"][DEFAULT_MODULE_ID]
    assert all(r["env_runners"]["num_sample_requests_in_flight"] == 2 for r in results)

    resumed = ray_config(broadcast_interval=2).build_algo()
    try:
        resumed.restore_from_path(tmp_path / "ckpt")
        after = resumed.train()
    finally:
        resumed.stop()
    assert after["training_iteration"] == 13
    assert after["num_learner_updates_lifetime"] == 13
    assert after["num_env_steps_sampled_lifetime"] > saved["num_env_steps_sampled_lifetime"]
    assert after["learner_group"]["policy_lag_mean"] <= 2  # the runners carry the checkpoint's version


def test_ray_crashed_and_hung_runners_are_replaced_while_the_other_samples(ray_cluster, tmp_path: Path) -> None:
    """Runner 1's first env raises at its 40th step; runner 2's first env hangs from its 20th on, once runner 1's
    replacement has stepped (seeds 10000, 20000; the replacement's first env, 10000 + RESTART_SEED_STRIDE, writes
    the marker), so the hang never overlaps the replacement's start, however slow the machine.

    Until the 8 s sample timeout, training goes on with runner 1's replacement alone: no barrier across runners.
    """
    config = ray_config().env_runners(sample_timeout_s=8.0).environment(
        "async_envs:HangAtStepEnv",
        env_config={"crash_seed": 10_000, "crash_at_step": 40, "hang_seed": 20_000, "hang_at_step": 20,
                    "mark_seed": 10_000 + RESTART_SEED_STRIDE, "marker": str(tmp_path / "replacement_samples")})
    algo = config.build_algo()
    results = []
    try:
        while not results or results[-1]["fault_tolerance"]["num_remote_worker_restarts"] < 2:
            results.append(algo.train())
            assert len(results) < 500
        while results[-1]["env_runners"]["num_healthy_env_runners"] < 2:  # the replacement is starting up
            results.append(algo.train())
            assert len(results) < 2000
    finally:
        algo.stop()
    one_restart = [r for r in results if r["fault_tolerance"]["num_remote_worker_restarts"] == 1]
    # While runner 2 hung, runner 1's replacement alone filled several batches (runner 2 gave at most 2 fragments).
    assert len(one_restart) >= 3
    assert results[-1]["fault_tolerance"]["num_remote_worker_restarts"] == 2
    steps = [r["num_env_steps_sampled_lifetime"] for r in results]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


# -- presets -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cartpole_impala", "cartpole_appo"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_preset_solves_cartpole_within_300k_env_steps(run_cli, preset: str, seed: int) -> None:
    """The issue's goal: training return >= 450 within 300k env steps (2 env runners, 1 learner)."""
    proc = run_cli(f"experiment={preset}", f"seed={seed}", "evaluation.episodes=2")
    assert proc.returncode == 0, proc.stderr
    rows = read_metrics(Path(proc.args[-2].removeprefix("hydra.run.dir=")))
    solved = [r for r in rows if r.get("env_runners/episode_return_mean", 0) >= 450]
    assert solved and solved[0]["num_env_steps_sampled_lifetime"] <= 300_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recurrent_appo_preset_learns_stateless_cartpole_within_1m_env_steps(run_cli, seed: int) -> None:
    """Issue 27's goal: with an LSTM, on CartPole without velocities, training return >= 350 within 1M env
    steps (2 env runners, 1 learner)."""
    proc = run_cli("experiment=stateless_cartpole_appo_lstm", f"seed={seed}", "evaluation.episodes=2", timeout=1200)
    assert proc.returncode == 0, proc.stderr
    rows = read_metrics(Path(proc.args[-2].removeprefix("hydra.run.dir=")))
    solved = [r for r in rows if r.get("env_runners/episode_return_mean", 0) >= 350]
    assert solved and solved[0]["num_env_steps_sampled_lifetime"] <= 1_000_000

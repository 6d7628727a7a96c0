"""DQN: config checks, the loss against a hand computation, target updates, a fast learning run, exact resume, Ray."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import psutil
import pytest
import torch
from conftest import connect_shared_ray
from corridor_env import CorridorEnv
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from test_config import build

from rlrun.algorithms.dqn import DQNConfig
from rlrun.algorithms.dqn.dqn_module import EpsilonGreedy
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.config.errors import ConfigError
from rlrun.core.columns import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.data.replay_buffers import ReplayBuffer
from rlrun.env import EnvRunner


def corridor_config(**training) -> DQNConfig:
    """Every DQN feature on: prioritized replay with annealed beta, 3-step returns, double Q, dueling."""
    defaults = {
        "lr": 3e-3, "gamma": 0.9, "train_batch_size": 32, "n_step": 3, "training_intensity": 4,
        "target_network_update_freq": 64, "epsilon": [[0, 1.0], [1000, 0.05]],
        "num_steps_sampled_before_learning_starts": 128,
        "replay_buffer": {"type": "prioritized", "capacity": 2000, "beta_schedule": [[0, 0.4], [3000, 1.0]]},
    }
    return (
        DQNConfig()
        .environment("corridor_env:CorridorEnv")
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=8)
        .training(**{**defaults, **training})
        .rl_module(model_config={"hiddens": [32], "activation": "relu"})
        .debugging(seed=0)
    )


def cartpole_config(**training) -> DQNConfig:
    return (DQNConfig().environment("CartPole-v1").training(**{"train_batch_size": 16, "lr": 1e-2, **training})
            .rl_module(model_config={"hiddens": [16]}).debugging(seed=1))


# -- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize(("training", "expected"), [
    ({"epsilon": [[10, 1.0], [0, 0.1]]}, "algo.epsilon timesteps must not decrease"),
    ({"epsilon": [[0, 2.0]]}, "algo.epsilon values must be <= 1.0"),
    ({"epsilon": 1.5}, "algo.epsilon must be a number in [0, 1]"),
    ({"replay_buffer": {"type": "ring"}}, "algo.replay_buffer.type must be one of ['prioritized', 'uniform']"),
    ({"replay_buffer": {"capacity": 8}}, "algo.replay_buffer.capacity must be >= algo.train_batch_size (16)"),
    ({"replay_buffer": {"beta": 2.0}}, "algo.replay_buffer.beta must be in [0, 1]"),
    ({"replay_buffer": {"beta_schedule": [[0, 0.4], [10, 1.5]]}}, "algo.replay_buffer.beta_schedule values"),
    ({"replay_buffer": {"size": 10}}, "unknown algo.replay_buffer key(s) ['size']"),
    ({"tau": 0.0}, "algo.tau must be in (0, 1]"),
    ({"n_step": 0}, "algo.n_step must be an integer >= 1"),
    ({"training_intensity": 0}, "algo.training_intensity must be > 0 or null"),
    ({"num_steps_sampled_before_learning_starts": -1}, "algo.num_steps_sampled_before_learning_starts"),
    ({"target_network_update_freq": -5}, "algo.target_network_update_freq must be >= 0"),
])
def test_bad_keys_raise_one_config_error_naming_the_key(training: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        cartpole_config(**training).validate()
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_minibatch_size_defaults_to_the_train_batch() -> None:
    assert cartpole_config().minibatch_size == 16
    assert cartpole_config(minibatch_size=8).minibatch_size == 8


@pytest.mark.parametrize(("overrides", "expected"), [
    (["env=pendulum"], ["algo=dqn does not support env 'Pendulum-v1'", "Discrete"]),
    (["algo.epsilon=[[10,1.0],[0,0.1]]"], ["algo.epsilon timesteps must not decrease"]),
    (["algo.replay_buffer.capacity=abc"], ["algo.replay_buffer.capacity", "abc"]),
    (["algo.replay_buffer.size=10"], ["unknown key algo.replay_buffer.size", "algo.replay_buffer has", "capacity"]),
])
def test_bad_overrides_are_rejected_in_one_line_before_anything_starts(overrides: list[str], expected: list[str]):
    """Compose, convert and validate as `run_experiment` does (the CLI prints `one_line` of the error)."""
    with pytest.raises((ConfigError, HydraException, OmegaConfBaseException)) as error:
        build("algo=dqn", *overrides)
    line = one_line(error.value)
    assert "\n" not in line and all(text in line for text in expected), line


def test_cli_refuses_dqn_on_box_actions_in_one_line(run_cli, tmp_path: Path) -> None:
    proc = run_cli("algo=dqn", "env=pendulum", "stop.iterations=1")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.splitlines() == [
        "rlrun: error: algo=dqn does not support env 'Pendulum-v1' with action space Box(-2.0, 2.0, (1,), float32); "
        "supported: Discrete; algorithms that take Box: ppo, sac, td3, impala, appo, bc, marwil"], proc.stderr
    assert not (tmp_path / "run").exists()


# -- module, loss and target network -------------------------------------------------------

def test_epsilon_greedy_probabilities_and_greedy_inference() -> None:
    q = torch.tensor([[0.0, 2.0, 1.0]] * 4000)
    generator = torch.Generator().manual_seed(0)
    for epsilon in (0.0, 0.3, 1.0):
        dist = EpsilonGreedy(torch.cat([q, torch.full((4000, 1), epsilon)], dim=-1))
        actions = dist.sample(generator)
        greedy_share = (actions == 1).float().mean().item()
        assert abs(greedy_share - (1 - epsilon + epsilon / 3)) < 0.03, epsilon
        probs = sum(dist.logp(torch.full((4000,), a)).exp() for a in range(3))
        torch.testing.assert_close(probs, torch.ones(4000))
        assert (dist.deterministic_sample() == 1).all()


def fixed_replay_batch(config: DQNConfig, rows: int, n_step: int = 3) -> dict[str, np.ndarray]:
    """A replay batch of CartPole transitions with importance weights that are not all 1."""
    runner = EnvRunner(config.env_runner_spec())
    buffer = ReplayBuffer(capacity=4000, seed=0)
    buffer.add(runner.sample(num_timesteps=600))
    runner.stop()
    batch = buffer.sample(rows, n_step=n_step, gamma=config.gamma)
    batch.pop(Columns.INDICES)
    batch[Columns.WEIGHTS] = np.linspace(0.2, 1.0, rows, dtype=np.float32)
    return batch


@pytest.mark.parametrize("double_q", [True, False])
def test_loss_and_td_errors_match_a_hand_computation(double_q: bool) -> None:
    config = cartpole_config(double_q=double_q, n_step=3, gamma=0.9, train_batch_size=64)
    batch = fixed_replay_batch(config, rows=64)  # one minibatch: the loss is taken before the step
    assert batch[Columns.TERMINATEDS].any() and (batch[Columns.N_STEP] < 3).any()
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]
    with torch.no_grad():  # a target network that differs from the online one
        for p in module.target_q.parameters():
            p.add_(0.1 * torch.randn_like(p))
        t = {k: torch.as_tensor(v) for k, v in batch.items()}
        q = module.q(t[Columns.OBS]).gather(1, t[Columns.ACTIONS].long()[:, None])[:, 0]
        target_next = module.target_q(t[Columns.NEXT_OBS])
        chooser = module.q(t[Columns.NEXT_OBS]) if double_q else target_next
        next_q = target_next.gather(1, chooser.argmax(1, keepdim=True))[:, 0]
        not_done = 1.0 - t[Columns.TERMINATEDS].float()
        target = t[Columns.REWARDS] + 0.9 ** t[Columns.N_STEP] * not_done * next_q
        error = q - target
        huber = torch.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5)
        expected_loss = (t[Columns.WEIGHTS] * huber).mean()
    result = learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 0})[DEFAULT_MODULE_ID]
    assert result["qf_loss"] == pytest.approx(expected_loss.item(), rel=1e-5)
    np.testing.assert_allclose(result["td_error"], error.numpy(), rtol=1e-5, atol=1e-6)


def test_target_network_follows_every_update_freq_env_steps_with_tau() -> None:
    config = cartpole_config(tau=0.25, target_network_update_freq=100)
    batch = fixed_replay_batch(config, rows=16)
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]

    def weights(net: torch.nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in net.parameters()]

    initial_target = weights(module.target_q)
    learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 99})
    for a, b in zip(weights(module.target_q), initial_target):  # too early: unchanged
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 100})
    for a, online, old in zip(weights(module.target_q), weights(module.q), initial_target):
        torch.testing.assert_close(a, 0.25 * online + 0.75 * old)
    assert not any(p.requires_grad for p in module.target_q.parameters())


def test_target_network_follows_every_gradient_step_when_update_freq_is_0() -> None:
    """One update of 2 minibatches moves the target twice: t = tau * w2 + tau * (1 - tau) * w1 + (1 - tau)^2 * t0."""
    config = cartpole_config(tau=0.5, target_network_update_freq=0, minibatch_size=8)
    batch = fixed_replay_batch(config, rows=16)
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]
    online_after_step: list[list[torch.Tensor]] = []
    optimizer = learner._optimizers[DEFAULT_MODULE_ID]["default_optimizer"]
    optimizer.register_step_post_hook(lambda *_: online_after_step.append(
        [p.detach().clone() for p in module.q.parameters()]))
    initial_target = [p.detach().clone() for p in module.target_q.parameters()]
    learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 0})
    assert len(online_after_step) == 2
    for got, w1, w2, t0 in zip(module.target_q.parameters(), *online_after_step, initial_target):
        torch.testing.assert_close(got, 0.5 * w2 + 0.25 * w1 + 0.25 * t0)


# -- learning, metrics and resume ------------------------------------------------------------

def train(algo, iterations: int) -> list[dict]:
    return [algo.train() for _ in range(iterations)]


def test_learns_the_corridor_greedily_with_every_feature_on() -> None:
    """Deterministic env, fixed seed: the greedy policy walks straight to the goal (4 steps, return 1)."""
    algo = corridor_config().build_algo()
    try:
        results = train(algo, 80)  # 2560 env steps
        evaluation = algo.evaluate(num_episodes=8)["evaluation"]
    finally:
        algo.stop()
    assert evaluation["episode_len_mean"] == 4 and evaluation["episode_return_mean"] == 1.0, evaluation
    last = results[-1]
    sampled = last["num_env_steps_sampled_lifetime"]  # real env steps: autoreset rows do not count
    assert 2000 < sampled < 80 * 32
    # training_intensity 4 with 32-row batches: 4 updates per 32 env steps once 128 steps are sampled.
    assert last["num_learner_updates_lifetime"] == 4 * (sampled - 128) // 32
    assert last["num_env_steps_trained_lifetime"] == 32 * last["num_learner_updates_lifetime"]
    assert last["env_runners"]["epsilon"] == pytest.approx(0.05)
    assert {"qf_loss", "qf_mean", "td_error_mean", "total_loss", "last_target_update_ts"} <= set(
        last["learners"][DEFAULT_MODULE_ID])
    buffer = last["replay_buffer"]
    assert buffer["num_env_steps_added_lifetime"] == sampled
    assert buffer["num_env_steps_stored"] == buffer["num_env_steps_added_lifetime"] - buffer[
        "num_env_steps_evicted_lifetime"] and buffer["num_env_steps_evicted_lifetime"] > 0
    assert results[2]["learners"] == {}  # nothing trained before 128 env steps


def deterministic(row: dict) -> dict:
    """A metrics row without wall-clock values."""
    skip = {"timers", "time_this_iter_s", "time_total_s", "num_env_steps_sampled_lifetime_throughput"}
    out = {k: v for k, v in row.items() if k not in skip}
    out["replay_buffer"] = {k: v for k, v in row["replay_buffer"].items() if not k.endswith("timer")}
    return out


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "without-off-policy-state-file"])
def test_resume_is_exact_with_the_replay_buffer_in_the_checkpoint(tmp_path, legacy: bool) -> None:
    """Also from a checkpoint written before `checkpoint.replay_buffer` (no off_policy_state.json)."""
    straight = corridor_config().build_algo()
    try:
        expected = [deterministic(r) for r in train(straight, 16)]
    finally:
        straight.stop()
    first = corridor_config().build_algo()
    try:
        train(first, 8)
        first.save_to_path(tmp_path / "ckpt")
    finally:
        first.stop()
    assert (tmp_path / "ckpt" / "replay_buffer.pt").is_file()
    if legacy:
        (tmp_path / "ckpt" / "off_policy_state.json").unlink()
    resumed = corridor_config().build_algo()
    try:
        resumed.restore_from_path(tmp_path / "ckpt")
        assert len(resumed.replay_buffer) > 0
        got = [deterministic(r) for r in train(resumed, 8)]
    finally:
        resumed.stop()
    assert got == expected[8:]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_dqn_preset_solves_cartpole_within_50k_steps(run_cli, tmp_path: Path, seed: int) -> None:
    """The issue's bar: greedy evaluation return >= 475 after at most 50k env steps (about 30 s each)."""
    proc = run_cli("experiment=cartpole_dqn", f"seed={seed}", "logger.tensorboard=false", timeout=900)
    assert proc.returncode == 0, proc.stderr
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["num_env_steps_sampled_lifetime"] <= 50_000
    assert last["evaluation/episode_return_mean"] >= 475, last["evaluation/episode_return_mean"]


# -- Ray mode --------------------------------------------------------------------------------

@pytest.mark.ray
def test_ray_mode_trains_and_a_ddp_update_equals_the_local_learner(ray_cluster) -> None:
    """2 env runners and 2 DDP learners train; on a fixed batch the learners then give one local learner's
    weights (target network included) and TD errors (one algorithm: its actors start once)."""
    config = corridor_config(tau=0.5, target_network_update_freq=1, train_batch_size=33).env_runners(
        num_env_runners=2, num_envs_per_env_runner=2).learners(num_learners=2)
    algo = config.build_algo()
    try:
        last = train(algo, 8)[-1]  # learning starts after 4 iterations (128 env steps)
        assert last["env_runners"]["num_healthy_env_runners"] == 2
        assert last["num_learner_updates_lifetime"] > 0
        assert np.isfinite(last["learners"][DEFAULT_MODULE_ID]["qf_loss"])

        local = config.copy().learners(num_learners=0).build_learner(env=CorridorEnv())
        local.build()
        local.set_state(algo.learner_group.get_state())
        # One minibatch of 33 rows (shards of 16 and 17): the same rows as the local learner whatever the shuffle.
        batch = algo.replay_buffer.sample(33, n_step=3, gamma=0.9, beta=0.5)
        batch.pop(Columns.INDICES)
        for step in range(3):
            timesteps = {"num_env_steps_sampled_lifetime": 10_000 + step}
            expected = local.update(batch=batch, timesteps=timesteps)[DEFAULT_MODULE_ID]["td_error"]
            for rank in algo.learner_group.update(batch=batch, timesteps=timesteps):
                np.testing.assert_allclose(rank[DEFAULT_MODULE_ID]["td_error"], expected, rtol=1e-4, atol=1e-5)
        remote = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
        for name, value in local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID].items():
            np.testing.assert_allclose(remote[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    finally:
        algo.stop()


# -- checkpoints without the replay buffer (checkpoint.replay_buffer=false) ------------------

def test_a_checkpoint_without_the_buffer_resumes_on_an_empty_one_that_refills_before_learning(tmp_path, caplog):
    """Learning waits `num_steps_sampled_before_learning_starts` env steps from the resume point, then trains at
    `training_intensity` from there (no burst of owed updates); a checkpoint taken while refilling resumes exactly."""
    first = corridor_config().build_algo()
    try:
        train(first, 8)  # 128 env steps in: learning has begun
        first.checkpoint_replay_buffer = False
        first.save_to_path(tmp_path / "no_buffer")
    finally:
        first.stop()
    assert not (tmp_path / "no_buffer" / "replay_buffer.pt").exists()
    resumed = corridor_config().build_algo()
    try:
        with caplog.at_level("WARNING", logger="rlrun"):
            resumed.restore_from_path(tmp_path / "no_buffer")
        assert [r.message for r in caplog.records if "replay buffer" in r.message] == [
            f"{tmp_path / 'no_buffer'} holds no replay buffer (checkpoint.replay_buffer=false): refilling an empty "
            "one; learning resumes after 128 env steps (algo.num_steps_sampled_before_learning_starts)"]
        assert len(resumed.replay_buffer) == 0
        steps_at_resume = resumed.counters["num_env_steps_sampled_lifetime"]
        updates_at_resume = resumed.counters["num_learner_updates_lifetime"]
        assert updates_at_resume > 0
        rows = train(resumed, 3)
        resumed.save_to_path(tmp_path / "refilling")  # with the buffer again: the default
        rows += train(resumed, 7)
    finally:
        resumed.stop()
    for row in rows:
        since = row["num_env_steps_sampled_lifetime"] - steps_at_resume
        assert row["replay_buffer"]["num_env_steps_added_lifetime"] == since
        expected_updates = 4 * (since - 128) // 32 if since >= 128 else 0
        assert row["num_learner_updates_lifetime"] - updates_at_resume == expected_updates, row
    assert rows[2]["learners"] == {} and rows[-1]["learners"]

    again = corridor_config().build_algo()
    try:
        again.restore_from_path(tmp_path / "refilling")
        got = [deterministic(r) for r in train(again, 7)]
    finally:
        again.stop()
    assert got == [deterministic(r) for r in rows[3:]]


# -- Ray mode: fault tolerance and learning ---------------------------------------------------

@pytest.fixture(scope="module")
def corridor_ray_algo(_ray_worker_path):
    """corridor_config() on 2 env runner actors and 2 DDP learner actors, started once: the learning test
    trains it from scratch (it runs first: the order below), then the kill test goes on with it."""
    connect_shared_ray()  # as `ray_cluster`, which every test using this also requests
    algo = corridor_config().env_runners(num_env_runners=2, num_envs_per_env_runner=2).learners(
        num_learners=2).build_algo()
    yield algo
    algo.stop()


@pytest.mark.ray
def test_ray_mode_learns_the_corridor_with_two_env_runners_and_two_ddp_learners(ray_cluster,
                                                                               corridor_ray_algo) -> None:
    """The embedded corridor test's bar, in Ray mode: the greedy policy walks straight to the goal."""
    algo = corridor_ray_algo
    assert algo.iteration == 0, "the learning test trains the shared algorithm from scratch: it must run first"
    # 32 env steps per iteration, as embedded; 40 iterations (1280 env steps) take epsilon to its final 0.05
    # (at 1000) and make 4 * (1280 - 128) / 32 = 144 updates: a probe evaluating every 10 iterations found the
    # greedy policy at the goal from the 10th on (80 iterations were twice the time for the same check).
    last = train(algo, 40)[-1]
    evaluation = algo.evaluate(num_episodes=8)["evaluation"]
    assert last["env_runners"]["num_healthy_env_runners"] == 2
    assert last["num_learner_updates_lifetime"] == 4 * (last["num_env_steps_sampled_lifetime"] - 128) // 32
    assert evaluation["episode_len_mean"] == 4 and evaluation["episode_return_mean"] == 1.0, evaluation


@pytest.mark.ray
def test_ray_mode_survives_a_killed_env_runner(ray_cluster, corridor_ray_algo) -> None:
    """As for PPO: the iteration of the kill goes on with the healthy runner and the replacement joins the next.
    That iteration's fragment (fewer sub-envs) is not stored; learning goes on from the buffer throughout.

    On the learning test's algorithm (its 2 DDP learners included), after that test: no start-up of its own."""
    from test_ray_env_runners import runner_pid  # imports Ray, which tests/test_gpu.py (importing this) must not need

    algo = corridor_ray_algo
    before = train(algo, 5)[-1]  # 2 runners x 2 envs x 8 steps per iteration: learning has begun
    assert before["num_learner_updates_lifetime"] > 0
    restarts = before["fault_tolerance"]["num_remote_worker_restarts"]
    victim = runner_pid(algo, 1)
    os.kill(victim, signal.SIGKILL)
    psutil.Process(victim).wait(timeout=30)
    results = train(algo, 3)
    assert runner_pid(algo, 1) != victim
    assert [r["env_runners"]["num_healthy_env_runners"] for r in results] == [1, 2, 2]
    assert all(r["fault_tolerance"]["num_remote_worker_restarts"] == restarts + 1 for r in results)
    added = [r["replay_buffer"]["num_env_steps_added_lifetime"] for r in [before, *results]]
    assert added[1] == added[0] < added[2] < added[3], added
    steps = [r["num_env_steps_sampled_lifetime"] for r in [before, *results]]
    assert steps == sorted(steps) and len(set(steps)) == 4
    updates = [r["num_learner_updates_lifetime"] for r in [before, *results]]
    assert updates == sorted(updates) and len(set(updates)) == 4, updates

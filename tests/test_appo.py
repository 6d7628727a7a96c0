"""APPO: config checks, the circular buffer, the loss against a hand computation, the target network,
embedded learning, and asynchronous updates on two DDP learner actors with real Ray actors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_impala import fixed_fragment

from rlrun.algorithms.appo import APPOConfig
from rlrun.config.errors import ConfigError
from rlrun.core.columns import DEFAULT_MODULE_ID, Columns
from rlrun.data.circular_buffer import CircularBuffer
from rlrun.data.vtrace import vtrace

GAMMA = 0.9


def cartpole_config(**training) -> APPOConfig:
    return (APPOConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=8)
            .training(**{"train_batch_size": 256, "lr": 1e-3, "entropy_coeff": 0.0, **training})
            .rl_module(model_config={"hiddens": [64, 64]}).debugging(seed=0))


@pytest.mark.parametrize(("training", "expected"), [
    ({"clip_param": 0.0}, "algo.clip_param must be > 0"),
    ({"kl_coeff": -1.0}, "algo.kl_coeff must be >= 0"),
    ({"target_network_update_freq": 0}, "algo.target_network_update_freq must be an integer >= 1"),
    ({"circular_buffer_num_batches": 0}, "algo.circular_buffer_num_batches must be an integer >= 1"),
    ({"circular_buffer_iterations_per_batch": 1.5}, "algo.circular_buffer_iterations_per_batch must be an integer"),
    ({"broadcast_interval": -1}, "algo.broadcast_interval must be an integer >= 1"),
])
def test_bad_keys_raise_one_config_error_naming_the_key(training: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        cartpole_config(**training).validate()
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_circular_buffer_reuses_each_batch_a_bounded_number_of_times() -> None:
    buffer = CircularBuffer(num_batches=2, iterations_per_batch=3, seed=0)
    draws: dict[str, int] = {}
    for name in "abcdef":
        buffer.add(name)
        for _ in range(2):
            drawn = buffer.sample()
            draws[drawn] = draws.get(drawn, 0) + 1
        assert len(buffer) <= 2
    assert max(draws.values()) <= 3 and sum(draws.values()) == 12
    assert set(draws) <= set("abcdef") and "f" in draws
    while len(buffer):
        buffer.sample()
    with pytest.raises(IndexError):
        buffer.sample()
    full = CircularBuffer(num_batches=1, iterations_per_batch=2)
    full.add("x")
    full.add("y")  # "x" leaves without ever being drawn
    assert full.num_dropped_unused == 1 and full.sample() == "y"


def test_loss_matches_a_hand_computation() -> None:
    config = cartpole_config(gamma=GAMMA, clip_param=0.2, use_kl_loss=True, kl_coeff=0.3, vf_loss_coeff=0.7,
                             entropy_coeff=0.05)
    learner = config.build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]
    with torch.no_grad():  # a target policy that differs from the online one
        for p in module.target.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    frag = fixed_fragment()
    batch = learner.build_train_batch(DEFAULT_MODULE_ID, frag)
    fwd_out = module.forward_train(batch)
    loss = learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=config, batch=batch, fwd_out=fwd_out)

    with torch.no_grad():
        to_tm = lambda x: x.transpose(0, 1).double()  # noqa: E731 -- [B, T, ...] -> [T, B, ...]
        probs = torch.softmax(to_tm(fwd_out[Columns.ACTION_DIST_INPUTS]), -1)
        target_probs = torch.softmax(to_tm(module.target.forward_train(batch)[Columns.ACTION_DIST_INPUTS]), -1)
        actions = torch.as_tensor(frag[Columns.ACTIONS])[..., None]
        logp, target_logp = probs.gather(-1, actions)[..., 0].log(), target_probs.gather(-1, actions)[..., 0].log()
        mu = torch.as_tensor(frag[Columns.ACTION_LOGP]).double()
        values = to_tm(fwd_out[Columns.VF_PREDS])
        bootstrap = module.compute_values({Columns.OBS: torch.as_tensor(frag[Columns.BOOTSTRAP_OBS])}).double()
        vs, adv, _ = vtrace(behaviour_logp=mu, target_logp=target_logp, rewards=torch.as_tensor(frag[Columns.REWARDS]),
                            values=values, bootstrap_value=bootstrap,
                            terminateds=torch.as_tensor(frag[Columns.TERMINATEDS]),
                            truncateds=torch.as_tensor(frag[Columns.TRUNCATEDS]), gamma=GAMMA)
        mask = frag[Columns.LOSS_MASK]
        total = 0.0
        for t, b in zip(*np.nonzero(mask)):
            ratio = min(2.0, float(torch.exp(mu[t, b] - target_logp[t, b]))) * float(torch.exp(logp[t, b] - mu[t, b]))
            surrogate = min(adv[t, b] * ratio, adv[t, b] * min(max(ratio, 0.8), 1.2))
            entropy = -(probs[t, b] * probs[t, b].log()).sum()
            kl = (target_probs[t, b] * (target_probs[t, b].log() - probs[t, b].log())).sum()
            total += -surrogate + 0.7 * 0.5 * (values[t, b] - vs[t, b]) ** 2 - 0.05 * entropy + 0.3 * kl
    assert loss.item() == pytest.approx(float(total) / mask.sum(), rel=1e-4)


def test_target_network_is_copied_every_target_network_update_freq_updates() -> None:
    learner = cartpole_config(target_network_update_freq=3).build_learner(env=gym.make("CartPole-v1"))
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]

    def target_is_online() -> bool:
        online = module.online_state()
        return all(torch.equal(v, online[k.removeprefix("target.")]) for k, v in module.state_dict().items()
                   if k.startswith("target."))

    assert target_is_online()
    same = []
    for _ in range(6):
        learner.update(batch=fixed_fragment())
        same.append(target_is_online())
    assert same == [False, False, True, False, False, True]


def test_embedded_appo_learns_cartpole_and_replays_batches() -> None:
    algo = cartpole_config().build_algo()
    try:
        results = [algo.train() for _ in range(100)]
    finally:
        algo.stop()
    last = results[-1]
    assert last["env_runners"]["episode_return_mean"] > 80  # random play: about 22
    assert last["num_learner_updates_lifetime"] == 200  # circular_buffer_iterations_per_batch=2 per batch
    assert last["circular_buffer"]["num_batches"] <= 4


def test_console_shows_the_replayed_training_throughput_beside_the_sampled_one(run_cli) -> None:
    proc = run_cli("algo=appo", "stop.timesteps=null", "stop.iterations=3", "env_runners.num_envs_per_runner=4",
                   "algo.train_batch_size=128", "evaluation.episodes=1", "logger.tensorboard=false")
    assert proc.returncode == 0, proc.stderr
    last = [line for line in proc.stdout.splitlines() if line.startswith("iter=3 ")]
    assert len(last) == 1 and "steps/s=" not in last[0], proc.stdout
    rates = dict(field.split("=", 1) for field in last[0].split("  "))
    # Every batch is trained circular_buffer_iterations_per_batch=2 times (replayed batches differ a little in
    # their autoreset rows).
    assert float(rates["trained/s"].replace(",", "")) == pytest.approx(
        2 * float(rates["sampled/s"].replace(",", "")), rel=0.2)


def test_ray_appo_on_two_ddp_learners_keeps_them_identical(ray_cluster) -> None:
    config = (cartpole_config(broadcast_interval=1).env_runners(num_env_runners=2, num_envs_per_env_runner=4)
              .learners(num_learners=2))
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(8)]
        import ray

        states = ray.get([a.get_state.remote() for a in algo.learner_group._learner._actors])
    finally:
        algo.stop()
    weights = [s["rl_module"][DEFAULT_MODULE_ID] for s in states]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert sum(r["num_learner_updates_lifetime"] > 0 for r in results) == 8
    finished = [r for r in results if r["learners"]]
    assert finished and all(np.isfinite(r["learners"][DEFAULT_MODULE_ID]["total_loss"]) for r in finished)
    assert results[-1]["num_env_steps_trained_lifetime"] > 0

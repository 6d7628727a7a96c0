"""The PPO loss of PPOTorchLearner against an independent torch.distributions reference.

The reference (`_reference_loss`) is RLlib's PPO loss written out with
`torch.distributions`: -mean(min(A r, A clip(r, 1-eps, 1+eps))) + vf_coeff *
mean(min((V - V_target)^2, vf_clip)) - entropy_coeff * mean(H) [+ kl_coeff * mean(KL(old || new))].
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Independent, Normal, kl_divergence

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import COMPONENT_LEARNER_VARS, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.core.rl_module import Categorical, DiagGaussian
from rlrun.env import EnvRunner

MID = DEFAULT_MODULE_ID


def _config(env_id: str = "CartPole-v1", **training) -> PPOConfig:
    training = {"train_batch_size": 128, "minibatch_size": 64, "num_epochs": 1, **training}
    return PPOConfig().environment(env_id).env_runners(num_envs_per_env_runner=4).training(**training).debugging(seed=0)


def _learner(env_id: str = "CartPole-v1", **training):
    config = _config(env_id, **training)
    env = gymnasium.make(env_id)
    for key, value in training.items():  # the builder honours every key, None ("disabled") included
        assert getattr(config, key) == value, f".training({key}={value!r}) left {key}={getattr(config, key)!r}"
    learner = config.build_learner(env=env)
    env.close()
    learner.build()
    return learner


def _prime(learner) -> None:
    """One real update on sampled data before the loss is called by hand.

    Keeps the formula tests below independent of whether compute_loss_for_module
    may be called outside `update()` (that has its own test).
    """
    runner = EnvRunner(learner.config.env_runner_spec())
    learner.update(batch=runner.sample(num_timesteps=128), timesteps={"num_env_steps_sampled_lifetime": 128})
    runner.stop()


def _ref_dist(inputs: torch.Tensor, discrete: bool):
    if discrete:
        return TorchCategorical(logits=inputs)
    mean, log_std = torch.chunk(inputs, 2, dim=-1)
    return Independent(Normal(mean, log_std.exp()), 1)


def _reference_loss(config, discrete, fwd_out, batch, kl_coeff):
    curr = _ref_dist(fwd_out[Columns.ACTION_DIST_INPUTS], discrete)
    old = _ref_dist(batch[Columns.ACTION_DIST_INPUTS], discrete)
    adv = batch[Columns.ADVANTAGES]
    ratio = torch.exp(curr.log_prob(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP])
    eps = config.clip_param
    surrogate = torch.minimum(adv * ratio, adv * torch.clamp(ratio, 1 - eps, 1 + eps))
    vf_err = (fwd_out[Columns.VF_PREDS] - batch[Columns.VALUE_TARGETS]) ** 2
    if config.vf_clip_param is not None:
        vf_err = torch.clamp(vf_err, max=config.vf_clip_param)
    total = -surrogate.mean() + config.vf_loss_coeff * vf_err.mean() - config.entropy_coeff * curr.entropy().mean()
    if config.use_kl_loss:
        total = total + kl_coeff * kl_divergence(old, curr).mean()
    return total


def _batch(learner, n: int = 8, ratios=None, advantages=None, vf_offsets=None, seed: int = 0):
    """A flat batch plus fwd_out from forward_train; `ratios` sets exp(logp_new - logp_old) per row."""
    g = torch.Generator().manual_seed(seed)
    module = learner.module[MID]
    space = learner.action_space
    obs = torch.randn(n, *learner.observation_space.shape, generator=g)
    fwd_out = module.forward_train({Columns.OBS: obs})
    logits = fwd_out[Columns.ACTION_DIST_INPUTS].detach()
    if isinstance(space, gymnasium.spaces.Discrete):
        actions = torch.randint(0, int(space.n), (n,), generator=g)
    else:
        actions = torch.randn(n, *space.shape, generator=g)
    curr_logp = module.get_train_action_dist_cls().from_logits(logits).logp(actions).detach()
    if ratios is None:
        ratios = torch.exp(0.4 * torch.randn(n, generator=g))
    ratios = torch.as_tensor(ratios, dtype=torch.float32)
    old_logits = logits + 0.5 * torch.randn(logits.shape, generator=g)
    vf = fwd_out[Columns.VF_PREDS].detach()
    batch = {
        Columns.OBS: obs,
        Columns.ACTIONS: actions,
        Columns.ACTION_LOGP: curr_logp - torch.log(ratios),
        Columns.ACTION_DIST_INPUTS: old_logits,
        Columns.ADVANTAGES: torch.randn(n, generator=g)
        if advantages is None
        else torch.as_tensor(advantages, dtype=torch.float32),
        Columns.VALUE_TARGETS: vf
        + (torch.randn(n, generator=g) * 3 if vf_offsets is None else torch.as_tensor(vf_offsets, dtype=torch.float32)),
    }
    return batch, fwd_out


def _loss(learner, batch, fwd_out, config=None):
    return learner.compute_loss_for_module(module_id=MID, config=config or learner.config, batch=batch, fwd_out=fwd_out)


def test_compute_loss_for_module_callable_outside_update():
    """A user (or a test) computes the loss of a freshly built learner directly, as in RLlib."""
    learner = _learner()
    batch, fwd_out = _batch(learner)
    loss = _loss(learner, batch, fwd_out)
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize(
    "training",
    [
        {},
        {"entropy_coeff": 0.05, "vf_loss_coeff": 0.7, "clip_param": 0.1},
        {"vf_clip_param": None},
        {"vf_clip_param": 1.0},
        {"use_kl_loss": True, "kl_coeff": 0.3, "entropy_coeff": 0.01},
    ],
    ids=["defaults", "coeffs", "no_vf_clip", "vf_clip_1", "kl_loss"],
)
def test_ppo_loss_matches_reference_categorical(training):
    learner = _learner(**training)
    _prime(learner)
    batch, fwd_out = _batch(learner, n=16)
    loss = _loss(learner, batch, fwd_out)
    kl_coeff = _coeff(learner)  # after the priming update: the adapted coefficient
    expected = _reference_loss(learner.config, True, fwd_out, batch, kl_coeff)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    # the loss is differentiable w.r.t. the module's outputs
    loss.backward()


def test_policy_clipping_engages_with_positive_and_negative_advantages():
    learner = _learner(clip_param=0.2, vf_loss_coeff=0.0, entropy_coeff=0.0)
    _prime(learner)
    #         A>0 r>1+eps, A>0 r<1-eps, A<0 r<1-eps, A<0 r>1+eps, A>0 inside, A<0 inside
    adv = [2.0, 2.0, -2.0, -2.0, 1.0, -1.0]
    ratios = [1.5, 0.5, 0.5, 1.5, 1.1, 0.9]
    batch, fwd_out = _batch(learner, n=6, ratios=ratios, advantages=adv)
    fwd_out[Columns.ACTION_DIST_INPUTS].retain_grad()
    loss = _loss(learner, batch, fwd_out)
    surrogates = [
        2.0 * 1.2,  # min(2*1.5, 2*1.2): clipped
        2.0 * 0.5,  # min(2*0.5, 2*0.8): unclipped (pessimistic side)
        -2.0 * 0.8,  # min(-2*0.5, -2*0.8): clipped
        -2.0 * 1.5,  # min(-2*1.5, -2*1.2): unclipped
        1.0 * 1.1,
        -1.0 * 0.9,
    ]
    expected = -sum(surrogates) / 6  # = -(2.4 + 1.0 - 1.6 - 3.0 + 1.1 - 0.9) / 6 = 1/6
    assert expected == pytest.approx(1 / 6)
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)

    # Clipped rows carry no policy gradient; the others do.
    loss.backward()
    grad_norm_per_row = fwd_out[Columns.ACTION_DIST_INPUTS].grad.abs().sum(-1)
    assert grad_norm_per_row[0].item() == 0.0
    assert grad_norm_per_row[2].item() == 0.0
    for row in (1, 3, 4, 5):
        assert grad_norm_per_row[row].item() > 0.0


def test_vf_clip_param_clamps_squared_error():
    clipped = _learner(vf_clip_param=10.0, vf_loss_coeff=1.0, entropy_coeff=0.0)
    _prime(clipped)
    # advantages 0 -> the policy term is 0; errors 0.5 and 5 -> squared 0.25 and 25
    batch, fwd_out = _batch(clipped, n=2, advantages=[0.0, 0.0], vf_offsets=[0.5, 5.0])
    fwd_out[Columns.VF_PREDS].retain_grad()
    loss = _loss(clipped, batch, fwd_out)
    assert loss.item() == pytest.approx((0.25 + 10.0) / 2, rel=1e-5)
    loss.backward()
    grad = fwd_out[Columns.VF_PREDS].grad
    assert grad[1].item() == 0.0  # the clamped row has no value gradient
    assert grad[0].item() == pytest.approx(2 * (-0.5) / 2, rel=1e-4)  # d/dV mean((V - (V+0.5))^2)

    batch, fwd_out = _batch(clipped, n=2, advantages=[0.0, 0.0], vf_offsets=[0.5, 5.0])
    half = clipped.config.copy().training(vf_loss_coeff=0.5)
    assert _loss(clipped, batch, fwd_out, config=half).item() == pytest.approx(0.5 * (0.25 + 10.0) / 2, rel=1e-5)
    larger = clipped.config.copy().training(vf_clip_param=100.0)
    assert _loss(clipped, batch, fwd_out, config=larger).item() == pytest.approx((0.25 + 25.0) / 2, rel=1e-5)


def test_vf_clip_param_none_disables_clipping():
    """API/schema: `vf_clip_param` null = unclipped; `.training(vf_clip_param=None)` must set it."""
    learner = _learner(vf_clip_param=None, vf_loss_coeff=1.0, entropy_coeff=0.0)
    _prime(learner)
    batch, fwd_out = _batch(learner, n=2, advantages=[0.0, 0.0], vf_offsets=[0.5, 50.0])
    assert _loss(learner, batch, fwd_out).item() == pytest.approx((0.25 + 2500.0) / 2, rel=1e-5)


def test_use_kl_loss_adds_kl_coeff_times_kl():
    learner = _learner(use_kl_loss=True, kl_coeff=0.3, entropy_coeff=0.0)
    _prime(learner)  # after an update the coefficient has adapted: read it from the learner's state
    kl_coeff = learner.get_state(COMPONENT_LEARNER_VARS)[COMPONENT_LEARNER_VARS][MID]["curr_kl_coeff"]
    assert kl_coeff in (pytest.approx(0.3 * 1.5), pytest.approx(0.3), pytest.approx(0.3 * 0.5))
    batch, fwd_out = _batch(learner, n=16)
    with_kl = _loss(learner, batch, fwd_out).item()
    without_kl = _loss(learner, batch, fwd_out, config=learner.config.copy().training(use_kl_loss=False)).item()
    old = TorchCategorical(logits=batch[Columns.ACTION_DIST_INPUTS])
    new = TorchCategorical(logits=fwd_out[Columns.ACTION_DIST_INPUTS].detach())
    kl_old_new = kl_divergence(old, new).mean().item()
    kl_new_old = kl_divergence(new, old).mean().item()
    assert kl_old_new > 1e-3 and abs(kl_old_new - kl_new_old) > 1e-4  # direction is distinguishable
    assert with_kl - without_kl == pytest.approx(kl_coeff * kl_old_new, rel=1e-4)


# -- adaptive KL coefficient ------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_batch():
    config = _config()
    runner = EnvRunner(config.env_runner_spec())
    batch = runner.sample(num_timesteps=256)
    runner.stop()
    return batch


def _kl_learner(kl_target: float, seed: int = 0):
    torch.manual_seed(seed)  # identical initial weights for learners built with the same seed
    learner = _learner(use_kl_loss=True, kl_coeff=0.2, kl_target=kl_target, lr=5e-3, num_epochs=2)
    learner.config.minibatch_size = 64
    return learner


def _coeff(learner) -> float:
    return learner.get_state(COMPONENT_LEARNER_VARS)[COMPONENT_LEARNER_VARS][MID]["curr_kl_coeff"]


def test_adaptive_kl_coeff_increases_when_kl_above_twice_target(cartpole_batch):
    learner = _kl_learner(kl_target=1e-9)
    assert _coeff(learner) == pytest.approx(0.2)
    results = learner.update(batch=cartpole_batch, timesteps={"num_env_steps_sampled_lifetime": 256})
    assert results[MID]["mean_kl_loss"] > 2e-9
    assert results[MID]["curr_kl_coeff"] == pytest.approx(0.3)
    assert _coeff(learner) == pytest.approx(0.3)
    learner.update(batch=cartpole_batch, timesteps={"num_env_steps_sampled_lifetime": 512})
    assert _coeff(learner) == pytest.approx(0.45)


def test_adaptive_kl_coeff_decreases_when_kl_below_half_target(cartpole_batch):
    learner = _kl_learner(kl_target=1e3)
    results = learner.update(batch=cartpole_batch, timesteps={"num_env_steps_sampled_lifetime": 256})
    assert results[MID]["mean_kl_loss"] < 0.5e3
    assert _coeff(learner) == pytest.approx(0.1)
    learner.update(batch=cartpole_batch, timesteps={"num_env_steps_sampled_lifetime": 512})
    assert _coeff(learner) == pytest.approx(0.05)


def test_adaptive_kl_coeff_unchanged_inside_band(cartpole_batch):
    probe = _kl_learner(kl_target=1.0)
    kl = probe.update(batch=cartpole_batch, timesteps={})[MID]["mean_kl_loss"]
    assert kl > 0
    learner = _kl_learner(kl_target=kl)  # same seed -> same update -> the same KL, inside [0.5, 2] x target
    results = learner.update(batch=cartpole_batch, timesteps={})
    assert results[MID]["mean_kl_loss"] == pytest.approx(kl, rel=1e-6)
    assert _coeff(learner) == pytest.approx(0.2)


def test_kl_coeff_unchanged_without_kl_loss(cartpole_batch):
    torch.manual_seed(0)
    learner = _learner(use_kl_loss=False, kl_coeff=0.2, kl_target=1e-9)
    learner.update(batch=cartpole_batch, timesteps={})
    assert _coeff(learner) == pytest.approx(0.2)


# -- distributions ----------------------------------------------------------------------


def test_categorical_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    logits, other_logits = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    actions = torch.randint(0, 3, (7,), generator=g)
    ours, other = Categorical.from_logits(logits), Categorical.from_logits(other_logits)
    ref, ref_other = TorchCategorical(logits=logits), TorchCategorical(logits=other_logits)
    torch.testing.assert_close(ours.logp(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.kl(other), kl_divergence(ref, ref_other))
    assert ours.sample().shape == (7,)
    torch.testing.assert_close(ours.deterministic_sample(), logits.argmax(-1))


@pytest.mark.parametrize("act_dim", [1, 3])
def test_diag_gaussian_matches_torch_normal(act_dim):
    g = torch.Generator().manual_seed(2)
    inputs = torch.cat([torch.randn(9, act_dim, generator=g), 0.5 * torch.randn(9, act_dim, generator=g)], -1)
    other_inputs = torch.cat([torch.randn(9, act_dim, generator=g), 0.5 * torch.randn(9, act_dim, generator=g)], -1)
    actions = torch.randn(9, act_dim, generator=g)
    ours, other = DiagGaussian.from_logits(inputs), DiagGaussian.from_logits(other_inputs)
    ref, ref_other = _ref_dist(inputs, False), _ref_dist(other_inputs, False)
    torch.testing.assert_close(ours.logp(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    torch.testing.assert_close(ours.kl(other), kl_divergence(ref, ref_other))
    assert ours.logp(actions).shape == (9,)
    # sampling: right shape, and the empirical mean/std of many draws match the parameters
    many = DiagGaussian.from_logits(inputs[:1].expand(20000, -1)).sample(torch.Generator().manual_seed(3))
    assert many.shape == (20000, act_dim)
    mean, log_std = torch.chunk(inputs[0], 2)
    torch.testing.assert_close(many.mean(0), mean, atol=0.05 * log_std.exp().max().item() + 0.01, rtol=0)
    torch.testing.assert_close(many.std(0), log_std.exp(), rtol=0.05, atol=0)


def test_pendulum_module_uses_diag_gaussian_and_loss_matches_reference():
    learner = _learner("Pendulum-v1", entropy_coeff=0.01, use_kl_loss=True, kl_coeff=0.2)
    _prime(learner)
    module = learner.module[MID]
    assert module.get_train_action_dist_cls() is DiagGaussian
    batch, fwd_out = _batch(learner, n=16)
    assert fwd_out[Columns.ACTION_DIST_INPUTS].shape == (16, 2)  # [mean, log_std] of a 1-d action
    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    mean, log_std = torch.chunk(fwd_out[Columns.ACTION_DIST_INPUTS], 2, dim=-1)
    ref = Normal(mean, log_std.exp())
    torch.testing.assert_close(dist.logp(batch[Columns.ACTIONS]), ref.log_prob(batch[Columns.ACTIONS]).sum(-1))
    torch.testing.assert_close(dist.entropy(), ref.entropy().sum(-1))
    kl_coeff = _coeff(learner)
    loss = _loss(learner, batch, fwd_out)
    torch.testing.assert_close(loss, _reference_loss(learner.config, False, fwd_out, batch, kl_coeff))
    # a standard normal's entropy is 0.5 * log(2 pi e) per dimension
    std_normal = DiagGaussian.from_logits(torch.zeros(1, 2))
    assert std_normal.entropy().item() == pytest.approx(0.5 * math.log(2 * math.pi * math.e), rel=1e-6)


def test_ppo_update_reduces_surrogate_loss_on_fixed_batch():
    """A sanity check of the loss sign: repeated updates on one batch lower the policy term and the value error.

    The batch is sampled with the learner's own weights, so the first minibatch has ratio 1 and,
    advantages being normalised, a policy term near 0. A learner that follows the surrogate's
    gradient drives the term below 0 on the batch it trains on; one that climbed it would push it
    above. No entropy bonus: only the surrogate moves the policy.
    """
    torch.manual_seed(0)
    learner = _learner(lr=1e-2, num_epochs=2, entropy_coeff=0.0)
    runner = EnvRunner(learner.config.env_runner_spec())
    runner.set_weights(learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE])
    batch = runner.sample(num_timesteps=256)
    runner.stop()
    first = learner.update(batch=batch, timesteps={})[MID]
    for _ in range(4):
        last = learner.update(batch=batch, timesteps={})[MID]
    assert np.isfinite(first["total_loss"]) and np.isfinite(last["total_loss"])
    assert abs(first["policy_loss"]) < 0.05, first
    assert last["policy_loss"] < min(0.0, first["policy_loss"] - 0.01), (first, last)
    assert last["vf_loss"] < first["vf_loss"]

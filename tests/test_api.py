"""The Python API of API.md, in embedded mode (no Ray) on CartPole-v1."""

from __future__ import annotations

import math
from collections.abc import Mapping

import gymnasium
import numpy as np
import pytest
import torch

from rlrun.algorithms.ppo import PPOConfig, PPOTorchLearner
from rlrun.core import COMPONENT_OPTIMIZER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.core.learner import Learner, LearnerGroup, TorchLearner
from rlrun.env import EnvRunner

MID = DEFAULT_MODULE_ID
ENV = "CartPole-v1"


def small_config(**training) -> PPOConfig:
    training = {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 2, "lr": 1e-3, **training}
    return PPOConfig().environment(ENV).env_runners(num_envs_per_env_runner=4).training(**training).debugging(seed=3)


@pytest.fixture
def env():
    e = gymnasium.make(ENV)
    yield e
    e.close()


@pytest.fixture
def learner(env):
    learner = small_config().build_learner(env=env)
    learner.build()
    return learner


@pytest.fixture(scope="module")
def sampled_batch():
    runner = EnvRunner(small_config().env_runner_spec())
    batch = runner.sample(num_timesteps=256)
    runner.stop()
    return batch


def _assert_nested_equal(a, b, path="state"):
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_nested_equal(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_nested_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, (torch.Tensor, np.ndarray)):
        assert torch.equal(torch.as_tensor(np.asarray(a)), torch.as_tensor(np.asarray(b))), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _nested_differs(a, b) -> bool:
    try:
        _assert_nested_equal(a, b)
    except AssertionError:
        return True
    return False


# -- AlgorithmConfig ---------------------------------------------------------------------


def test_config_builder_sections_return_self():
    config = PPOConfig()
    assert config.environment(ENV) is config
    assert config.environment(ENV, env_config={}) is config
    assert config.env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=16) is config
    assert config.env_runners(num_cpus_per_env_runner=1) is config
    assert config.learners(num_learners=0, num_gpus_per_learner=0, num_cpus_per_learner=1) is config
    assert config.training(lr=1e-3, gamma=0.98, train_batch_size=64, minibatch_size=32, num_epochs=2) is config
    assert config.training(grad_clip=1.0, lambda_=0.9, clip_param=0.3, vf_clip_param=5.0) is config
    assert config.training(entropy_coeff=0.01, vf_loss_coeff=0.4, use_kl_loss=True, kl_coeff=0.1) is config
    assert config.training(kl_target=0.02, learner_class=PPOTorchLearner) is config
    assert config.rl_module(model_config={"hiddens": [32], "activation": "relu"}) is config
    assert config.debugging(seed=7) is config
    assert (config.env, config.num_envs_per_env_runner, config.rollout_fragment_length) == (ENV, 2, 16)
    assert (config.lr, config.gamma, config.train_batch_size, config.minibatch_size) == (1e-3, 0.98, 64, 32)
    assert (config.lambda_, config.clip_param, config.vf_clip_param, config.kl_target) == (0.9, 0.3, 5.0, 0.02)
    assert config.model_config["hiddens"] == [32] and config.model_config["activation"] == "relu"
    assert config.seed == 7
    assert config.get_learner_class() is PPOTorchLearner


def test_config_training_none_disables_optional_keys():
    """`grad_clip` / `vf_clip_param` / `lr_schedule` are "null = disabled": passing None must set them."""
    config = PPOConfig().training(grad_clip=1.0, vf_clip_param=5.0, lr_schedule=[[0, 1e-3], [100, 1e-4]])
    config.training(grad_clip=None, vf_clip_param=None, lr_schedule=None)
    assert config.grad_clip is None
    assert config.vf_clip_param is None
    assert config.lr_schedule is None


def test_config_training_rejects_unknown_key():
    with pytest.raises(Exception, match="not_a_key"):
        PPOConfig().training(not_a_key=1)


# -- Algorithm ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def algo():
    algo = small_config().build_algo()
    yield algo
    algo.stop()


def test_build_algo_train_returns_documented_keys(algo):
    for _ in range(5):
        results = algo.train()
        if "episode_return_mean" in results["env_runners"]:
            break
    env_runners = results["env_runners"]
    assert "episode_return_mean" in env_runners, f"no finished episodes reported: {env_runners}"
    # A random-ish CartPole policy: episodes of ~10-100 steps, every step rewards 1.
    assert 8 <= env_runners["episode_return_mean"] <= 500
    steps = results["num_env_steps_sampled_lifetime"]
    assert isinstance(steps, int) and steps >= 256 * results["training_iteration"] * 0.8
    learner_results = results["learners"][MID]
    assert math.isfinite(learner_results["total_loss"])
    for key in ("policy_loss", "vf_loss", "entropy", "default_optimizer_learning_rate"):
        assert key in learner_results, key
    assert learner_results["default_optimizer_learning_rate"] == pytest.approx(1e-3)
    assert isinstance(results["timers"], Mapping) and results["timers"]
    assert all(isinstance(v, float) and v >= 0 for v in results["timers"].values())
    assert results["training_iteration"] >= 1

    before = results["num_env_steps_sampled_lifetime"]
    nxt = algo.train()
    assert nxt["training_iteration"] == results["training_iteration"] + 1
    assert nxt["num_env_steps_sampled_lifetime"] > before


def test_algo_evaluate_returns_evaluation_return(algo):
    out = algo.evaluate()
    ret = out["evaluation"]["episode_return_mean"]
    assert isinstance(ret, float) and 8 <= ret <= 500
    # greedy and reset with a fixed seed: the same weights evaluate to the same result
    assert algo.evaluate()["evaluation"]["episode_return_mean"] == ret


def test_algo_stop_is_callable_on_fresh_algo():
    """stop() straight after build_algo(), with no train() in between, closes the envs it built.

    On a user env: CartPole's native vector env does not record that it was closed; SyncVectorEnv does.
    """
    algo = small_config().environment("user_envs:TinyEnv").build_algo()
    env = algo.env_runner_group.env
    assert not env.closed
    algo.stop()
    assert env.closed


# -- Learner -------------------------------------------------------------------------------


def test_build_learner_requires_build(env, sampled_batch):
    learner = small_config().build_learner(env=env)
    assert isinstance(learner, Learner) and isinstance(learner, TorchLearner)
    with pytest.raises(RuntimeError, match="build"):
        _ = learner.module
    with pytest.raises(RuntimeError, match="build"):
        learner.get_state()
    with pytest.raises(RuntimeError, match="build"):
        learner.update(batch=sampled_batch, timesteps={})
    learner.build()
    assert MID in learner.module


def test_env_runner_batch_is_accepted_by_learner_update(learner):
    runner = EnvRunner(small_config().env_runner_spec())
    batch = runner.sample(num_timesteps=100)
    runner.stop()
    # time-major [T, B, ...], T = ceil(100 / 4)
    assert batch[Columns.OBS].shape == (25, 4, 4)
    for col in (Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS, Columns.TRUNCATEDS, Columns.ACTION_LOGP):
        assert batch[col].shape == (25, 4), col
    assert batch[Columns.ACTION_DIST_INPUTS].shape == (25, 4, 2)
    assert Columns.ADVANTAGES not in batch
    keys_before = set(batch)

    results = learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 100})
    assert set(batch) == keys_before  # the caller's batch is not modified
    r = results[MID]
    for key in ("total_loss", "policy_loss", "vf_loss", "entropy", "mean_kl_loss"):
        assert math.isfinite(r[key]), key
    assert r["gradients_default_optimizer_global_norm"] > 0
    assert r["default_optimizer_learning_rate"] == pytest.approx(1e-3)
    real_steps = int(np.asarray(batch[Columns.LOSS_MASK]).sum()) if Columns.LOSS_MASK in batch else 100
    # every real row trains once per epoch (autoreset rows never do)
    assert r["num_module_steps_trained"] == real_steps * learner.config.num_epochs
    assert 0 < r["entropy"] <= math.log(2) + 1e-6


def test_learner_update_accepts_multi_module_batch(learner, sampled_batch):
    results = learner.update(batch={MID: sampled_batch}, timesteps={})
    assert set(results) == {MID} and math.isfinite(results[MID]["total_loss"])


def test_learner_get_state_components(learner, sampled_batch):
    learner.update(batch=sampled_batch, timesteps={})
    state = learner.get_state()
    assert {COMPONENT_RL_MODULE, COMPONENT_OPTIMIZER} <= set(state)
    weights = state[COMPONENT_RL_MODULE][MID]
    assert weights and all(isinstance(v, np.ndarray) for v in weights.values())
    only = learner.get_state(components=COMPONENT_RL_MODULE)
    assert set(only) == {COMPONENT_RL_MODULE}
    _assert_nested_equal(only[COMPONENT_RL_MODULE], state[COMPONENT_RL_MODULE])
    adam = state[COMPONENT_OPTIMIZER][MID]["default_optimizer"]["state"]
    assert adam and all({"exp_avg", "exp_avg_sq", "step"} <= set(s) for s in adam.values())


def test_learner_get_state_is_a_snapshot(learner, sampled_batch):
    state = learner.get_state()
    learner.update(batch=sampled_batch, timesteps={})
    after = learner.get_state()
    assert _nested_differs(state[COMPONENT_RL_MODULE], after[COMPONENT_RL_MODULE])
    assert _nested_differs(state[COMPONENT_OPTIMIZER], after[COMPONENT_OPTIMIZER])


def test_learner_set_state_subset_leaves_rest_untouched(learner, sampled_batch):
    learner.update(batch=sampled_batch, timesteps={})
    s1 = learner.get_state()
    learner.update(batch=sampled_batch, timesteps={})
    s2 = learner.get_state()
    assert _nested_differs(s1[COMPONENT_RL_MODULE], s2[COMPONENT_RL_MODULE])
    assert _nested_differs(s1[COMPONENT_OPTIMIZER], s2[COMPONENT_OPTIMIZER])

    # only the weights go back to s1; the optimizer keeps s2
    learner.set_state({COMPONENT_RL_MODULE: s1[COMPONENT_RL_MODULE]})
    now = learner.get_state()
    _assert_nested_equal(now[COMPONENT_RL_MODULE], s1[COMPONENT_RL_MODULE])
    _assert_nested_equal(now[COMPONENT_OPTIMIZER], s2[COMPONENT_OPTIMIZER])

    # only the optimizer goes back to s1; the weights stay s1 (set above)
    learner.set_state({COMPONENT_RL_MODULE: s2[COMPONENT_RL_MODULE]})
    learner.set_state({COMPONENT_OPTIMIZER: s1[COMPONENT_OPTIMIZER]})
    now = learner.get_state()
    _assert_nested_equal(now[COMPONENT_RL_MODULE], s2[COMPONENT_RL_MODULE])
    _assert_nested_equal(now[COMPONENT_OPTIMIZER], s1[COMPONENT_OPTIMIZER])

    # an empty state changes nothing
    learner.set_state({})
    _assert_nested_equal(learner.get_state()[COMPONENT_RL_MODULE], s2[COMPONENT_RL_MODULE])


def test_learner_module_set_state_sets_only_weights(learner, sampled_batch):
    learner.update(batch=sampled_batch, timesteps={})
    before = learner.get_state()
    zeros = {mid: {k: np.zeros_like(v) for k, v in w.items()} for mid, w in before[COMPONENT_RL_MODULE].items()}
    learner.module.set_state(zeros)
    after = learner.get_state()
    _assert_nested_equal(after[COMPONENT_RL_MODULE], zeros)
    _assert_nested_equal(after[COMPONENT_OPTIMIZER], before[COMPONENT_OPTIMIZER])
    # the learner trains the module it holds: an all-zero policy outputs uniform action probabilities
    out = learner.module[MID].forward_inference({Columns.OBS: torch.randn(3, 4)})
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS], torch.zeros(3, 2))


def test_rl_module_forwards_and_action_distribution(learner):
    module = learner.module[MID]
    obs = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    inf = module.forward_inference({Columns.OBS: obs})
    exp = module.forward_exploration({Columns.OBS: obs})
    train = module.forward_train({Columns.OBS: obs})
    for out in (inf, exp, train):
        assert out[Columns.ACTION_DIST_INPUTS].shape == (5, 2)
    assert train[Columns.VF_PREDS].shape == (5,)
    torch.testing.assert_close(inf[Columns.ACTION_DIST_INPUTS], train[Columns.ACTION_DIST_INPUTS])

    dist_cls = module.get_train_action_dist_cls()
    dist = dist_cls.from_logits(train[Columns.ACTION_DIST_INPUTS])
    actions = dist.sample()
    assert actions.shape == (5,) and set(actions.tolist()) <= {0, 1}
    logp = dist.logp(actions)
    assert logp.shape == (5,) and bool((logp <= 0).all())
    probs = torch.softmax(train[Columns.ACTION_DIST_INPUTS], -1)
    torch.testing.assert_close(logp, probs.gather(-1, actions[:, None]).squeeze(-1).log())
    ent = dist.entropy()
    assert ent.shape == (5,) and bool((ent >= 0).all()) and bool((ent <= math.log(2) + 1e-6).all())
    torch.testing.assert_close(dist.kl(dist), torch.zeros(5), atol=1e-6, rtol=0)
    other = dist_cls.from_logits(train[Columns.ACTION_DIST_INPUTS] + torch.tensor([1.0, -1.0]))
    assert bool((dist.kl(other) > 0).all())


# -- LearnerGroup ----------------------------------------------------------------------------


def test_learner_group_update_and_weights(env, sampled_batch):
    group = small_config().build_learner_group(env=env)
    assert isinstance(group, LearnerGroup)
    w0 = group.get_weights()
    results = group.update(batch=sampled_batch, timesteps={"num_env_steps_sampled_lifetime": 256})
    assert isinstance(results, list) and len(results) == 1
    assert isinstance(results[0], dict) and math.isfinite(results[0][MID]["total_loss"])
    w1 = group.get_weights()
    assert _nested_differs(w0, w1)

    # get_weights / set_weights round trip
    group.set_weights(w0)
    _assert_nested_equal(group.get_weights(), w0)
    shifted = {mid: {k: v + 1.0 for k, v in w.items()} for mid, w in w0.items()}
    group.set_weights(shifted)
    _assert_nested_equal(group.get_weights(), shifted)

    # get_state / set_state round trip (weights and optimizer)
    state = group.get_state()
    group.update(batch=sampled_batch, timesteps={})
    group.set_state(state)
    _assert_nested_equal(group.get_state(), state)
    group.stop()


def test_learner_group_async_update_without_actors_is_a_clear_error(env, sampled_batch):
    group = small_config().build_learner_group(env=env)
    with pytest.raises((ValueError, RuntimeError, NotImplementedError), match=r"async|learner actors|learners\.num"):
        group.update(batch=sampled_batch, timesteps={}, async_update=True)
    group.stop()


# -- custom Learner hooks -----------------------------------------------------------------


class RecordingSGDLearner(TorchLearner):
    """Overrides the four hooks of API.md and records every call."""

    instances: list[RecordingSGDLearner] = []

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple] = []
        self.optimizers_created: list[torch.optim.Optimizer] = []
        RecordingSGDLearner.instances.append(self)

    def configure_optimizers_for_module(self, module_id, config):
        self.calls.append(("configure_optimizers_for_module", module_id))
        opt = torch.optim.SGD(self.module[module_id].parameters(), lr=config.lr, momentum=0.9)
        self.optimizers_created.append(opt)
        return opt

    def before_gradient_based_update(self, *, timesteps):
        super().before_gradient_based_update(timesteps=timesteps)
        self.calls.append(("before_gradient_based_update", dict(timesteps)))

    def after_gradient_based_update(self, *, timesteps):
        super().after_gradient_based_update(timesteps=timesteps)
        self.calls.append(("after_gradient_based_update", dict(timesteps)))

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        self.calls.append(("compute_loss_for_module", module_id, len(batch[Columns.OBS])))
        module = self.module[module_id]
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        # REINFORCE on immediate rewards plus a value regression: enough to produce gradients.
        return (
            -(dist.logp(batch[Columns.ACTIONS]) * batch[Columns.REWARDS]).mean()
            + (fwd_out[Columns.VF_PREDS] - batch[Columns.REWARDS]).pow(2).mean()
        )


def _names(calls):
    return [c[0] for c in calls]


def test_custom_learner_hooks_are_called(env, sampled_batch):
    config = small_config(learner_class=RecordingSGDLearner, minibatch_size=64, num_epochs=2)
    learner = config.build_learner(env=env)
    assert type(learner) is RecordingSGDLearner
    learner.build()
    assert learner.calls == [("configure_optimizers_for_module", MID)]
    assert len(learner.optimizers_created) == 1 and isinstance(learner.optimizers_created[0], torch.optim.SGD)

    w0 = learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE]
    results = learner.update(batch=sampled_batch, timesteps={"num_env_steps_sampled_lifetime": 256})
    names = _names(learner.calls[1:])
    assert names[0] == "before_gradient_based_update" and names[-1] == "after_gradient_based_update"
    assert learner.calls[1][1] == {"num_env_steps_sampled_lifetime": 256}
    assert learner.calls[-1][1] == {"num_env_steps_sampled_lifetime": 256}
    n_real = int(np.asarray(sampled_batch[Columns.LOSS_MASK]).sum())
    loss_calls = [c for c in learner.calls if c[0] == "compute_loss_for_module"]
    num_minibatches = math.ceil(n_real / 64)
    assert len(loss_calls) == 2 * num_minibatches  # num_epochs x minibatches
    # every real row trains once per epoch, in near-equal minibatches of at most 64 rows
    assert all(c[1] == MID and c[2] in (n_real // num_minibatches, n_real // num_minibatches + 1)
               for c in loss_calls)
    assert sum(c[2] for c in loss_calls) == 2 * n_real
    assert math.isfinite(results[MID]["total_loss"])

    # the optimizer that ran is the hook's SGD (momentum buffers, SGD param-group keys), not Adam
    opt_state = learner.get_state(COMPONENT_OPTIMIZER)[COMPONENT_OPTIMIZER][MID]["default_optimizer"]
    assert opt_state["param_groups"][0]["momentum"] == 0.9
    assert "betas" not in opt_state["param_groups"][0]
    assert opt_state["state"] and all("momentum_buffer" in s for s in opt_state["state"].values())
    assert _nested_differs(w0, learner.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE])


def test_training_learner_class_is_used_by_build_algo():
    RecordingSGDLearner.instances.clear()
    algo = small_config(learner_class=RecordingSGDLearner).build_algo()
    try:
        assert len(RecordingSGDLearner.instances) == 1
        learner = RecordingSGDLearner.instances[0]
        results = algo.train()
        names = _names(learner.calls)
        assert names[0] == "configure_optimizers_for_module"
        assert "before_gradient_based_update" in names and "after_gradient_based_update" in names
        assert names.count("compute_loss_for_module") >= 1
        ts = next(c[1] for c in learner.calls if c[0] == "before_gradient_based_update")
        assert ts["num_env_steps_sampled_lifetime"] == results["num_env_steps_sampled_lifetime"]
        opt_state = algo.learner_group.get_state()[COMPONENT_OPTIMIZER][MID]["default_optimizer"]
        assert all("momentum_buffer" in s for s in opt_state["state"].values())
        assert math.isfinite(results["learners"][MID]["total_loss"])
    finally:
        algo.stop()

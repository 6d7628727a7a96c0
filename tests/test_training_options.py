"""What the training and model keys of README's table actually do, seen in the objects they build.

`lr_schedule` and `grad_clip` are read where they take effect: at every optimizer step,
through torch's global step pre-hook (the learning rate in the optimizer's param group,
the norm of the gradients the step is about to apply). `normalize_advantages` is read
in the loss input, `activation` and `vf_share_layers` in the network that the Hydra
config builds. Everything runs in embedded mode on CartPole-v1 with tiny batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium
import hydra
import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from rlrun.algorithms.from_config import build_algorithm_config
from rlrun.algorithms.ppo import PPOConfig, PPOTorchLearner
from rlrun.algorithms.registry import algorithm_schemas
from rlrun.config.schema import register_schemas
from rlrun.core import DEFAULT_MODULE_ID, Columns
from rlrun.core.rl_module import RLModule
from rlrun.env import EnvRunner

MID = DEFAULT_MODULE_ID
ENV = "CartPole-v1"
BATCH = 256
LR_KEY = "default_optimizer_learning_rate"
GRAD_NORM_KEY = "gradients_default_optimizer_global_norm"


def small_config(**training) -> PPOConfig:
    training = {"train_batch_size": BATCH, "minibatch_size": 64, "num_epochs": 2, "lr": 1e-3, **training}
    return PPOConfig().environment(ENV).env_runners(num_envs_per_env_runner=4).training(**training).debugging(seed=0)


def built_learner(config: PPOConfig) -> PPOTorchLearner:
    torch.manual_seed(0)  # the same initial weights for every learner of a comparison
    env = gymnasium.make(ENV)
    learner = config.build_learner(env=env)
    env.close()
    learner.build()
    return learner


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    runner = EnvRunner(small_config().env_runner_spec())
    sampled = runner.sample(num_timesteps=BATCH)
    runner.stop()
    return sampled


@pytest.fixture
def optimizer_steps() -> Iterator[list[dict[str, float]]]:
    """Every optimizer step taken while the test runs: the lr it uses and the norm of the gradients it applies."""
    steps: list[dict[str, float]] = []

    def record(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        steps.append({"lr": optimizer.param_groups[0]["lr"], "grad_norm": float(norm)})

    handle = register_optimizer_step_pre_hook(record)
    yield steps
    handle.remove()


# -- lr_schedule ---------------------------------------------------------------------------------


def test_lr_schedule_sets_the_optimizer_lr_piecewise_linearly_over_env_steps(batch, optimizer_steps) -> None:
    """[[0, 1e-3], [1000, 1e-4]]: 1e-3 at 0, linear in between, 1e-4 from 1000 on; `lr` itself is ignored."""
    learner = built_learner(small_config(lr=0.5, lr_schedule=[[0, 1e-3], [1000, 1e-4]], num_epochs=1))
    expected = {0: 1e-3, 250: 7.75e-4, 500: 5.5e-4, 1000: 1e-4, 5000: 1e-4}
    for timestep, lr in expected.items():
        optimizer_steps.clear()
        result = learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": timestep})[MID]
        assert optimizer_steps, "the update took no optimizer step"
        assert [s["lr"] for s in optimizer_steps] == pytest.approx([lr] * len(optimizer_steps), rel=1e-9)
        assert result[LR_KEY] == pytest.approx(lr, rel=1e-9)


def test_lr_schedule_sizes_adam_s_first_step(batch) -> None:
    """Adam's first step moves a weight by lr * g / (|g| + eps): the largest move is the scheduled lr."""
    learner = built_learner(small_config(lr=0.5, lr_schedule=[[0, 1e-3], [1000, 1e-4]], num_epochs=1,
                                         minibatch_size=BATCH))
    before = [p.detach().clone() for p in learner.module[MID].parameters()]
    learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": 250})
    moves = [(p.detach() - b).abs().max() for p, b in zip(learner.module[MID].parameters(), before, strict=True)]
    assert float(torch.stack(moves).max()) == pytest.approx(7.75e-4, rel=1e-2)


def test_lr_schedule_follows_the_run_s_env_steps(optimizer_steps) -> None:
    """In an algorithm, each iteration's update uses the lr of the env steps sampled so far (after its sampling)."""
    schedule = [[0, 1e-3], [200, 0.0]]
    config = small_config(lr_schedule=schedule, train_batch_size=64, minibatch_size=32, num_epochs=1)
    algo = config.env_runners(num_envs_per_env_runner=2).build_algo()
    try:
        results = []
        for _ in range(4):
            optimizer_steps.clear()
            results.append(algo.train())
            steps_lrs = {s["lr"] for s in optimizer_steps}
            assert len(steps_lrs) == 1, f"one lr per update, got {steps_lrs}"
            assert results[-1]["learners"][MID][LR_KEY] == pytest.approx(steps_lrs.pop(), rel=1e-9)
    finally:
        algo.stop()
    for r in results:
        t = r["num_env_steps_sampled_lifetime"]
        assert r["learners"][MID][LR_KEY] == pytest.approx(max(0.0, 1e-3 * (1 - t / 200)), rel=1e-9, abs=1e-12)
    assert results[-1]["num_env_steps_sampled_lifetime"] >= 200 and results[-1]["learners"][MID][LR_KEY] == 0.0


# -- grad_clip -----------------------------------------------------------------------------------


def test_grad_clip_bounds_the_norm_of_the_gradients_each_step_applies(batch, optimizer_steps) -> None:
    clip = 0.05
    result = built_learner(small_config(grad_clip=clip)).update(batch=batch, timesteps={})[MID]
    applied = [s["grad_norm"] for s in optimizer_steps]
    assert len(applied) >= 4
    # The metric is the norm before clipping; at initialization it is far above the clip.
    assert result[GRAD_NORM_KEY] > 4 * clip
    assert max(applied) == pytest.approx(clip, rel=1e-4)
    assert all(norm <= clip * (1 + 1e-5) for norm in applied)


def test_without_grad_clip_the_steps_apply_the_raw_gradients(batch, optimizer_steps) -> None:
    result = built_learner(small_config(grad_clip=None)).update(batch=batch, timesteps={})[MID]
    applied = [s["grad_norm"] for s in optimizer_steps]
    assert max(applied) > 4 * 0.05
    # Unclipped, the gradients applied are the ones the metric averages over the minibatches.
    assert result[GRAD_NORM_KEY] == pytest.approx(float(np.mean(applied)), rel=1e-5)


# -- normalize_advantages ------------------------------------------------------------------------


class AdvantageRecordingLearner(PPOTorchLearner):
    """PPO's learner, keeping the advantages that each loss call receives."""

    def build(self) -> None:
        super().build()
        self.loss_advantages: list[torch.Tensor] = []

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        self.loss_advantages.append(batch[Columns.ADVANTAGES].detach().clone())
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


def loss_advantages(batch: dict[str, np.ndarray], normalize: bool) -> torch.Tensor:
    """The advantages of the single loss call of a one-minibatch, one-epoch update."""
    learner = built_learner(small_config(learner_class=AdvantageRecordingLearner, normalize_advantages=normalize,
                                         minibatch_size=BATCH, num_epochs=1))
    learner.update(batch=batch, timesteps={})
    assert len(learner.loss_advantages) == 1
    return learner.loss_advantages[0]


def test_normalize_advantages_gives_the_loss_mean_0_std_1(batch) -> None:
    raw, normalized = loss_advantages(batch, normalize=False), loss_advantages(batch, normalize=True)
    assert len(raw) == len(normalized) == int(batch[Columns.LOSS_MASK].sum())
    assert abs(float(raw.mean())) > 0.1 and not 0.9 < float(raw.std()) < 1.1  # GAE of an untrained critic
    assert float(normalized.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(normalized.std()) == pytest.approx(1.0, abs=1e-4)
    # Same weights and shuffle: the normalised advantages are the raw ones, standardised over the batch.
    torch.testing.assert_close(normalized, (raw - raw.mean()) / raw.std(), rtol=1e-5, atol=1e-5)


# -- model.activation and model.vf_share_layers (through the Hydra config) -----------------------


def module_from_cli(*overrides: str) -> RLModule:
    """The RLModule a run builds for CartPole with these command-line overrides."""
    register_schemas(algorithm_schemas())
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        cfg = hydra.compose(config_name="config", overrides=list(overrides))
    env = gymnasium.make(ENV)
    try:
        return build_algorithm_config(cfg).get_rl_module_spec().build(env.observation_space, env.action_space)
    finally:
        env.close()


ACTIVATION_CLASSES = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "gelu": nn.GELU}


@pytest.mark.parametrize("name", sorted(ACTIVATION_CLASSES))
def test_activation_is_the_nonlinearity_of_every_hidden_layer(name: str) -> None:
    module = module_from_cli(f"model.activation={name}", "model.hiddens=[16,8,4]")
    for head in ("pi", "vf"):
        layers = list(getattr(module, head).head)
        # Linear, activation, Linear, activation, Linear, activation, then the linear output head.
        assert [type(layer) for layer in layers] == [nn.Linear, ACTIVATION_CLASSES[name]] * 3 + [nn.Linear], head


def hidden_params(obs: int, hiddens: list[int]) -> int:
    """Weights and biases of a stack of Linear layers from `obs` inputs through `hiddens`."""
    sizes = [obs, *hiddens]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("shared", [False, True])
def test_vf_share_layers_puts_the_value_head_on_the_policy_s_hidden_layers(shared: bool) -> None:
    module = module_from_cli(f"model.vf_share_layers={str(shared).lower()}", "model.hiddens=[32,16]")
    hidden = hidden_params(4, [32, 16])
    heads = (16 * 2 + 2) + (16 * 1 + 1)  # policy logits for 2 actions, one value
    num_params = sum(p.numel() for p in module.parameters())
    assert num_params == (hidden + heads if shared else 2 * hidden + heads)

    # The value loss's gradient reaches the policy's layers only when they are shared.
    obs = torch.randn(8, 4)
    module.compute_values({Columns.OBS: obs}).pow(2).mean().backward()
    policy_layers = module.encoder if shared else module.pi
    touched = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in policy_layers.parameters()]
    assert touched and all(touched) == shared and any(touched) == shared

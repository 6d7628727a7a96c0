"""TD3 (and DDPG as its configuration): config checks, the critic target against a hand computation (clipped
double Q, target policy smoothing), delayed actor and target updates, exploration, a fast learning run, exact
resume, Ray with DDP learners, and the Pendulum preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from off_policy_checks import (
    assert_preset_evaluates_at_least,
    assert_resume_is_exact,
    assert_trains_on_ray_and_ddp_equals_local,
)
from omegaconf.errors import OmegaConfBaseException
from target_env import TargetEnv
from test_config import build
from test_dqn import train
from test_sac import fixed_replay_batch

from rlrun.algorithms.td3 import TD3Config
from rlrun.algorithms.td3.td3_learner import NOISE
from rlrun.algorithms.td3.td3_module import GaussianExploration
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.config.errors import ConfigError
from rlrun.core.columns import DEFAULT_MODULE_ID, Columns

DDPG = {"twin_q": False, "policy_delay": 1, "smooth_target_policy": False}


def target_config(**training) -> TD3Config:
    """TD3 on the 1-D target env (actions in [-0.5, 0.5]), with prioritized replay and 2-step returns."""
    defaults = {
        "lr": 3e-3, "gamma": 0.9, "train_batch_size": 64, "n_step": 2, "training_intensity": 64,
        "tau": 0.05, "num_steps_sampled_before_learning_starts": 128, "exploration_noise": 0.2,
        "replay_buffer": {"type": "prioritized", "capacity": 5000},
    }
    return (
        TD3Config()
        .environment("target_env:TargetEnv")
        .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=16)
        .training(**{**defaults, **training})
        .rl_module(model_config={"hiddens": [32, 32], "activation": "relu"})
        .debugging(seed=0)
    )


def built_learner(config: TD3Config):
    learner = config.build_learner(env=TargetEnv())
    learner.build()
    return learner, learner.module[DEFAULT_MODULE_ID]


# -- configuration ------------------------------------------------------------------------

@pytest.mark.parametrize(("training", "expected"), [
    ({"policy_delay": 0}, "algo.policy_delay must be an integer >= 1 (got 0)"),
    ({"target_noise": -0.1}, "algo.target_noise must be >= 0"),
    ({"exploration_noise": -1.0}, "algo.exploration_noise must be >= 0"),
    ({"critic_lr": 1e-3, "lr": 1e-3, "lr_schedule": [[0, 1e-3], [100, 0.0]]},
     "algo.critic_lr cannot go with algo.lr_schedule, which sets both TD3 learning rates"),
])
def test_bad_keys_raise_one_config_error_naming_the_key(training: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        target_config(**training).validate()
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("overrides", "expected"), [
    (["env=cartpole"], ["algo=td3 does not support env 'CartPole-v1'", "supported: Box"]),
    (["algo.twin_q=maybe"], ["algo.twin_q", "maybe"]),
    (["algo.policy_delay=1.5"], ["algo.policy_delay"]),
])
def test_bad_overrides_are_rejected_in_one_line_before_anything_starts(overrides: list[str], expected: list[str]):
    with pytest.raises((ConfigError, HydraException, OmegaConfBaseException)) as error:
        build("algo=td3", "env=pendulum", *overrides)
    line = one_line(error.value)
    assert "\n" not in line and all(text in line for text in expected), line


def test_cli_refuses_td3_on_discrete_actions_in_one_line(run_cli, tmp_path: Path) -> None:
    proc = run_cli("algo=td3", "env=cartpole", "stop.iterations=1")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.splitlines() == [
        "rlrun: error: algo=td3 does not support env 'CartPole-v1' with action space Discrete(2); supported: Box; "
        "algorithms that take Discrete: ppo, dqn, impala, appo, bc, marwil"]
    assert not (tmp_path / "run").exists()


# -- the losses ----------------------------------------------------------------------------------

def written_out_losses(module, rows: dict, *, twin: bool, smooth: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's critic and actor losses, written out from the module's networks (actions in [-1, 1] are the
    target env's divided by its scale 0.5)."""
    obs, next_obs = rows[Columns.OBS], rows[Columns.NEXT_OBS]

    def q(net, o, a):
        values = [n(torch.cat([o, a], -1)).squeeze(-1) for n in ((net.q1, net.q2) if twin else (net.q1,))]
        return values

    with torch.no_grad():
        next_a = torch.tanh(module.target_pi(next_obs))
        if smooth:
            next_a = (next_a + (0.2 * rows[NOISE]).clamp(-0.5, 0.5)).clamp(-1, 1)
        not_done = 1 - rows[Columns.TERMINATEDS].float()
        y = rows[Columns.REWARDS] + 0.9 ** rows[Columns.N_STEP] * not_done * torch.stack(
            q(module.target_qf, next_obs, next_a)).min(0).values
    replayed = [v - y for v in q(module.qf, obs, rows[Columns.ACTIONS] / 0.5)]
    critic = (rows[Columns.WEIGHTS] * 0.5 * sum(e ** 2 for e in replayed)).mean()
    actor = -q(module.qf, obs, torch.tanh(module.pi(obs)))[0].mean()
    return critic, actor


@pytest.mark.parametrize("ddpg", [False, True], ids=["td3", "ddpg"])
def test_the_critic_target_and_the_actor_loss_match_the_paper_and_reach_only_their_own_parameters(ddpg: bool):
    """TD3: the smaller twin target Q at the smoothed target action; DDPG: its one target critic at the plain
    target action. The actor's loss (on a policy step) reaches the actor only, through the action."""
    config = target_config(**{"n_step": 3, "policy_delay": 1, **(DDPG if ddpg else {})})
    batch = fixed_replay_batch(config, rows=64)
    learner, module = built_learner(config)
    with torch.no_grad():  # targets that differ from the online networks
        for p in [*module.target_qf.parameters(), *module.target_pi.parameters()]:
            p.add_(0.3 * torch.randn_like(p))
    rows = learner.build_train_batch(DEFAULT_MODULE_ID, batch)
    # Noise large enough that the clip at target_noise_clip (0.5) and at the bounds both bite.
    rows[NOISE] = 3 * rows[NOISE]
    assert learner.is_policy_step(DEFAULT_MODULE_ID)
    loss = learner.compute_loss_for_module(module_id=DEFAULT_MODULE_ID, config=learner.config, batch=rows,
                                           fwd_out=module.forward_train(rows))
    loss.backward()
    got = {name: p.grad.clone() for name, p in module.named_parameters() if p.requires_grad}
    assert (module.qf.q2 is None) == ddpg

    critic, actor = written_out_losses(module, rows, twin=not ddpg, smooth=not ddpg)
    for loss_part, prefix in ((critic, "qf."), (actor, "pi.")):
        names = [n for n, _ in module.named_parameters() if n.startswith(prefix)]
        params = [p for n, p in module.named_parameters() if n.startswith(prefix)]
        for name, grad in zip(names, torch.autograd.grad(loss_part, params)):
            torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert loss.item() == pytest.approx((critic + actor).item(), rel=1e-5)
    # Without smoothing the noise column is not read at all.
    rows[NOISE] = torch.zeros_like(rows[NOISE]) if ddpg else rows[NOISE]
    replay = learner.critic_loss(module, rows, module.forward_train(rows))[0]
    assert replay.item() == pytest.approx(critic.item(), rel=1e-5)


def test_target_policy_smoothing_changes_the_target_only_within_the_noise_clip() -> None:
    """With target_noise_clip 0 the smoothed target equals the plain one; with a clip it differs."""
    batch = fixed_replay_batch(target_config(), rows=64)
    losses = {}
    for clip in (0.0, 0.5):
        learner, module = built_learner(target_config(target_noise=1.0, target_noise_clip=clip))
        rows = learner.build_train_batch(DEFAULT_MODULE_ID, batch)
        losses[clip] = learner.critic_loss(module, rows, module.forward_train(rows))[0].item()
    plain_learner, plain = built_learner(target_config(smooth_target_policy=False))
    rows = plain_learner.build_train_batch(DEFAULT_MODULE_ID, batch)
    assert losses[0.0] == pytest.approx(plain_learner.critic_loss(plain, rows, plain.forward_train(rows))[0].item())
    assert losses[0.5] != pytest.approx(losses[0.0], rel=1e-3)


@pytest.mark.parametrize("policy_delay", [1, 3])
def test_the_actor_and_the_targets_move_every_policy_delay_steps_the_critics_every_step(policy_delay: int):
    config = target_config(policy_delay=policy_delay, tau=0.5)
    learner, module = built_learner(config)
    batch = fixed_replay_batch(config, rows=64)
    moved = {part: [] for part in ("pi", "qf", "target_pi", "target_qf")}
    for step in range(6):
        before = {part: [p.detach().clone() for p in getattr(module, part).parameters()] for part in moved}
        result = learner.update(batch=batch, timesteps={"num_env_steps_sampled_lifetime": step})[DEFAULT_MODULE_ID]
        for part, old in before.items():
            moved[part].append(any(not torch.equal(a, p) for a, p in zip(old, getattr(module, part).parameters())))
        assert ("policy_loss" in result) == ((step + 1) % policy_delay == 0)
    policy_steps = [(step + 1) % policy_delay == 0 for step in range(6)]
    assert moved == {"pi": policy_steps, "qf": [True] * 6, "target_pi": policy_steps, "target_qf": policy_steps}
    assert result["num_gradient_steps"] == 6


# -- exploration -----------------------------------------------------------------------------------

def test_exploration_is_uniform_before_learning_and_clipped_gaussian_noise_after() -> None:
    """Actions in [-0.5, 0.5]; the actor's 0.9 in [-1, 1] units is 0.45. Noise of std 0.1 (in [-1, 1] units)
    clipped at the bound: E[min(0.9 + 0.1 e, 1)] = 0.9 + 0.1 (P(e > 1) - pdf(1)) = 0.8917, and 15.9% of the
    actions sit at the bound."""
    dist_cls = GaussianExploration.bounded(np.array([-0.5]), np.array([0.5]))
    action = torch.full((20_000, 1), 0.9)
    generator = torch.Generator().manual_seed(0)
    noisy = dist_cls(torch.cat([action, torch.tensor([[0.1, 0.0]]).expand(20_000, 2)], -1)).sample(generator)
    uniform_inputs = torch.cat([action, torch.tensor([[0.1, 1.0]]).expand(20_000, 2)], -1)
    uniform = dist_cls(uniform_inputs).sample(generator)
    assert noisy.max() <= 0.5 and uniform.min() >= -0.5 and uniform.max() <= 0.5
    assert noisy.mean().item() == pytest.approx(0.5 * 0.8917, abs=0.002)
    assert (noisy == 0.5).float().mean().item() == pytest.approx(0.159, abs=0.01)
    assert abs(uniform.mean().item()) < 0.01 and uniform.std().item() == pytest.approx(1 / np.sqrt(12), abs=0.005)
    torch.testing.assert_close(dist_cls(uniform_inputs).deterministic_sample(), torch.full((20_000, 1), 0.45))


def test_runners_act_at_random_until_learning_starts_then_add_noise_to_the_actor() -> None:
    """The algorithm sends the runners `[exploration_noise, random]` with the weights after each sample."""
    algo = target_config(num_steps_sampled_before_learning_starts=64).build_algo()
    try:
        runner_module = algo.env_runner_group._local.module
        seen = []
        for _ in range(4):
            seen.append((algo.counters["num_env_steps_sampled_lifetime"], runner_module.exploration.tolist()))
            algo.train()
    finally:
        algo.stop()
    # 32 rows an iteration, of which autoreset rows are no env steps.
    assert seen == [(0, pytest.approx([0.2, 1.0])), (28, pytest.approx([0.2, 1.0])), (54, pytest.approx([0.2, 1.0])),
                    (80, pytest.approx([0.2, 0.0]))]


# -- learning, resume and Ray ------------------------------------------------------------------

def test_learns_to_move_to_the_target_greedily() -> None:
    """About 1300 env steps: the actor comes close to the best return (about -0.13), far above random steps
    (about -1.9, tests/test_sac.py)."""
    algo = target_config().build_algo()
    try:
        results = train(algo, 48)
        evaluation = algo.evaluate(num_episodes=20)["evaluation"]
    finally:
        algo.stop()
    assert evaluation["episode_return_mean"] > -0.5, evaluation
    last = results[-1]
    assert last["num_learner_updates_lifetime"] == (last["num_env_steps_sampled_lifetime"] - 128)  # 1 per step
    learner_metrics = last["learners"][DEFAULT_MODULE_ID]
    assert {"qf_loss", "policy_loss", "td_error_mean", "gradients_actor_global_norm",
            "critic_learning_rate", "num_gradient_steps"} <= set(learner_metrics)


def test_resume_is_exact_with_the_replay_buffer_in_the_checkpoint(tmp_path) -> None:
    """Also the actor's rhythm: policy_delay 3 with 16 updates an iteration, so the checkpoint falls between
    two policy steps."""
    def config() -> TD3Config:
        return target_config(num_steps_sampled_before_learning_starts=32, training_intensity=16, policy_delay=3)

    assert_resume_is_exact(config, tmp_path)


@pytest.mark.ray
def test_ray_mode_trains_and_a_ddp_update_equals_the_local_learner(ray_cluster, tmp_path: Path) -> None:
    """An env runner actor (it receives the exploration with the weights) and 2 DDP learners train; on a fixed
    batch the learners then give one local learner's weights (targets included) and TD errors, on policy
    steps and critic-only steps alike. The local learner starts from the group's checkpoint, RNG included: it
    draws the smoothing noise."""
    config = target_config(train_batch_size=33, training_intensity=8, num_steps_sampled_before_learning_starts=64,
                           tau=0.5).env_runners(num_env_runners=1, num_envs_per_env_runner=2).learners(num_learners=2)
    assert_trains_on_ray_and_ddp_equals_local(config, TargetEnv(), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pendulum_td3_preset_swings_up_within_20k_steps(run_cli, tmp_path: Path, seed: int) -> None:
    """The issue's bar: greedy evaluation return >= -200 (the preset's 20 episodes) after at most 20k env steps
    (about 2 minutes each)."""
    assert_preset_evaluates_at_least(run_cli, tmp_path, "pendulum_td3", seed, 20_000, -200)

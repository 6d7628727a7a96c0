"""Action masking (issue 26): an `action_mask` entry of a Dict observation restricts sampling, greedy acting and the
losses of PPO, IMPALA, APPO and DQN to legal actions.

The envs (tests/action_envs.py) end an episode with reward -1 on an illegal action and count it, and half of their
actions are illegal at every step: an unmasked policy (any fresh one, which acts near uniformly) plays illegal
moves within a few steps, so counts of zero say the masks hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from action_envs import EPISODE_LEN, MaskedAgentsEnv, MaskedEnv, MaskedMultiDiscreteEnv
from conftest import RLRUN, pythonpath_with_tests

import rlrun
from rlrun.algorithms.appo import APPOConfig
from rlrun.algorithms.dqn import DQNConfig
from rlrun.algorithms.dqn.dqn_module import EpsilonGreedy
from rlrun.algorithms.impala import IMPALAConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.config.errors import ConfigError
from rlrun.core.columns import Columns
from rlrun.core.packed_space import PackedSpace
from rlrun.core.rl_module import DefaultActorCriticModule
from rlrun.core.rl_module.action_masking import ActionMaskError, check_legal, mask_logits
from rlrun.core.rl_module.distributions import Categorical, MultiCategorical
from rlrun.env.env_creation import make_env
from rlrun.env.env_spec import as_env_spec
from rlrun.run.recorder import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # the envs' module, for the in-process runs
MASKED, MASKED_MD = "action_envs:MaskedEnv", "action_envs:MaskedMultiDiscreteEnv"
NO_LEGAL = "action_envs:NoLegalActionEnv"
RLRUN_EVAL = str(Path(sys.executable).with_name("rlrun-eval"))
# Legal play at random scores 0.1 + 0.9 / 6 a step (the paying action is legal half the time, then 1 in 3).
RANDOM_LEGAL = EPISODE_LEN * (0.1 + 0.9 / 2 / 3)


@pytest.fixture(autouse=True)
def _no_illegal_actions_yet():
    MaskedEnv.illegal_actions = MaskedMultiDiscreteEnv.illegal_actions = MaskedAgentsEnv.illegal_actions = 0


def _packed(env_id: str) -> tuple[PackedSpace, gym.Space]:
    env = make_env(as_env_spec(env_id))
    env.close()
    return env.observation_space, env.action_space


# -- the distributions and the loss ----------------------------------------------------------


def test_masked_categorical_gives_illegal_actions_no_mass_and_finite_entropy_and_kl() -> None:
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    # Seeded, and legal logits within ~60 of each other: exp(-60) is still a float32 probability > 0 (unseeded
    # logits x 30 once drew a legal one 125 below the best, whose probability underflowed to 0). The masked
    # entries are finfo.min, so log_softmax must stay finite whatever the legal ones are.
    logits = mask_logits(torch.randn(2, 4, generator=torch.Generator().manual_seed(0)) * 10, mask)
    dist = Categorical(logits)
    other = Categorical(mask_logits(torch.randn(2, 4, generator=torch.Generator().manual_seed(1)), mask))
    assert torch.equal(dist.log_probs.exp() > 0, mask)
    assert torch.isfinite(dist.log_probs).all() and torch.isfinite(dist.entropy()).all()
    assert torch.isfinite(dist.kl(other)).all() and (dist.kl(other) >= -1e-6).all()
    assert dist.entropy()[1] == 0  # one legal action: no uncertainty
    samples = torch.stack([dist.sample(torch.Generator().manual_seed(i)) for i in range(200)])
    assert mask.gather(1, samples.T).all()
    assert mask.gather(1, dist.deterministic_sample()[:, None]).all()


def test_multidiscrete_masks_are_the_sub_actions_masks_concatenated() -> None:
    dist_cls = MultiCategorical.over(gym.spaces.MultiDiscrete([3, 2]))
    mask = torch.tensor([[False, True, False, True, False]]).expand(500, 5)
    actions = dist_cls(mask_logits(torch.randn(500, 5), mask)).sample(torch.Generator().manual_seed(0))
    assert (actions == torch.tensor([1, 0])).all()


def test_epsilon_greedy_draws_uniformly_among_legal_actions() -> None:
    mask = torch.tensor([True, False, True, True, False, False]).expand(30000, 6)
    q = mask_logits(torch.zeros(30000, 6).index_fill_(1, torch.tensor([1]), 5.0), mask)  # the best is illegal
    dist = EpsilonGreedy(torch.cat([q, torch.ones(30000, 1)], dim=-1))  # epsilon 1: every action a random one
    counts = np.bincount(dist.sample(torch.Generator().manual_seed(0)).numpy(), minlength=6) / 30000
    assert np.allclose(counts, [1 / 3, 0, 1 / 3, 1 / 3, 0, 0], atol=0.015), counts
    assert torch.allclose(dist.logp(torch.tensor([0])), torch.tensor(np.log(1 / 3), dtype=torch.float32))


def test_the_masked_ppo_loss_has_finite_gradients_and_none_through_illegal_logits() -> None:
    space, action_space = _packed(MASKED)
    module = DefaultActorCriticModule(space, action_space, {"vf_share_layers": True})
    mask = np.random.default_rng(0).integers(0, 2, (64, 6)).astype(np.int8)
    mask[:, 0] = 1
    obs = torch.from_numpy(space.pack({"obs": np.random.default_rng(1).random((64, 6), np.float32),
                                       "action_mask": mask}))
    logits = module.forward_train({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    logits.retain_grad()
    dist, old = Categorical(logits), Categorical(logits.detach() + 0.1)
    actions = dist.sample(torch.Generator().manual_seed(0))
    assert torch.from_numpy(mask).bool().gather(1, actions[:, None]).all()
    loss = -(dist.logp(actions) * torch.randn(64)).mean() - 0.01 * dist.entropy().mean() + old.kl(dist).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)
    assert (logits.grad[torch.from_numpy(mask == 0)] == 0).all() and logits.grad.abs().sum() > 0


def test_double_and_plain_dqn_targets_take_the_best_legal_next_action() -> None:
    """Q(s', 0) is far the largest but action 0 is illegal in s': the target must value a legal action instead."""
    space, _ = _packed(MASKED)
    env = make_env(as_env_spec(MASKED))
    for double_q in (True, False):
        learner = DQNConfig().environment(MASKED).training(double_q=double_q, lr=0.0).build_learner(env=env)
        learner.build()
        module = learner.module["default_policy"]
        with torch.no_grad():
            for q in (module.q, module.target_q):
                q.advantages.bias[0] = 100.0
        td_errors = {}
        for name, legal in (("masked", [0, 1, 1, 0, 1, 0]), ("all legal", [1] * 6)):
            obs = space.pack({"obs": np.zeros((4, 6), np.float32), "action_mask": np.tile(np.int8(legal), (4, 1))})
            batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: np.ones(4, np.int64),
                     Columns.REWARDS: np.zeros(4, np.float32), Columns.TERMINATEDS: np.zeros(4, bool),
                     Columns.N_STEP: np.ones(4, np.int64), Columns.WEIGHTS: np.ones(4, np.float32)}
            td_errors[name] = np.abs(learner.update(batch=batch)["default_policy"]["td_error"]).max()
        # Q(s, 1) - 0.99 max_legal Q(s', a) is 1% of Q(s, 1) with the mask, about -99 if action 0 counted.
        assert td_errors["masked"] < 1.0 < 50.0 < td_errors["all legal"], (double_q, td_errors)
    env.close()


# -- sampling and greedy acting, embedded ----------------------------------------------------


@pytest.mark.parametrize("env_id", [MASKED, MASKED_MD])
def test_ppo_never_plays_an_illegal_action_and_learns_the_legal_best(env_id: str) -> None:
    algo = (PPOConfig().environment(env_id).env_runners(num_envs_per_env_runner=4)
            .training(train_batch_size=256, minibatch_size=64, num_epochs=4, lr=3e-3).debugging(seed=0).build_algo())
    try:
        for _ in range(8):
            result = algo.train()
        greedy = algo.evaluate(10)["evaluation"]
    finally:
        algo.stop()
    assert MaskedEnv.illegal_actions == MaskedMultiDiscreteEnv.illegal_actions == 0
    assert result["env_runners"]["episode_len_mean"] == greedy["episode_len_mean"] == EPISODE_LEN
    assert np.isfinite(list(result["learners"]["default_policy"].values())).all()
    assert greedy["episode_return_mean"] > RANDOM_LEGAL + 1.0, greedy


@pytest.mark.parametrize("config_cls", [IMPALAConfig, APPOConfig])
def test_impala_and_appo_never_play_an_illegal_action(config_cls) -> None:
    algo = (config_cls().environment(MASKED).env_runners(num_envs_per_env_runner=4)
            .training(train_batch_size=128).debugging(seed=0).build_algo())
    try:
        for _ in range(5):
            result = algo.train()
        algo.evaluate(5)
    finally:
        algo.stop()
    assert MaskedEnv.illegal_actions == 0
    assert np.isfinite(list(result["learners"]["default_policy"].values())).all()


def test_multi_agent_modules_mask_each_agents_multidiscrete_actions() -> None:
    """A shared and independent policies over two agents' packed Dict observations, MultiDiscrete actions."""
    for policies in ("shared", "independent"):
        algo = (PPOConfig().environment("action_envs:MaskedAgentsEnv").multi_agent(policies=policies)
                .env_runners(num_envs_per_env_runner=2).training(train_batch_size=128, minibatch_size=64)
                .debugging(seed=0).build_algo())
        try:
            for _ in range(2):
                result = algo.train()
            greedy = algo.evaluate(2)["evaluation"]
        finally:
            algo.stop()
        assert MaskedAgentsEnv.illegal_actions == 0, policies
        assert result["env_runners"]["episode_len_mean"] == greedy["episode_len_mean"] == EPISODE_LEN


def test_a_masked_run_resumes_from_its_checkpoint_with_the_same_masked_policy(tmp_path: Path) -> None:
    def build():
        return (PPOConfig().environment(MASKED).env_runners(num_envs_per_env_runner=2)
                .training(train_batch_size=64, minibatch_size=32).debugging(seed=0).build_algo())

    algo, resumed = build(), build()
    try:
        algo.train()
        resumed.restore_from_path(algo.save_to_path(tmp_path / "checkpoint"))
        after = [a.train()["learners"]["default_policy"]["total_loss"] for a in (algo, resumed)]
        assert after[0] == after[1]  # the same batch from the same episodes, the same masked logits
        resumed.evaluate(4)
    finally:
        algo.stop()
        resumed.stop()
    assert MaskedEnv.illegal_actions == 0


def test_dqn_explores_and_acts_greedily_among_legal_actions_only() -> None:
    """The first steps are epsilon 1 (every action a random one), then the learned greedy actions."""
    algo = (DQNConfig().environment(MASKED).env_runners(num_envs_per_env_runner=4)
            .training(train_batch_size=32, num_steps_sampled_before_learning_starts=200,
                      epsilon=[[0, 1.0], [1000, 0.05]]).debugging(seed=0).build_algo())
    try:
        while algo.train()["num_env_steps_sampled_lifetime"] < 1200:
            pass
        greedy = algo.evaluate(10)["evaluation"]
    finally:
        algo.stop()
    assert MaskedEnv.illegal_actions == 0 and greedy["episode_len_mean"] == EPISODE_LEN


# -- errors, rlrun-eval and Ray --------------------------------------------------------------


@pytest.mark.parametrize(("env_class", "expected"), [
    ("WrongMaskSizeEnv", "has an action_mask of 5 entries; its action space Discrete(6) needs 6"),
    ("MaskedMultiBinaryEnv", "action masks apply to Discrete and MultiDiscrete actions; its action space is "
                             "MultiBinary(6)"),
])
def test_a_mask_that_does_not_fit_the_action_space_is_refused_in_one_line(env_class: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        PPOConfig().environment(f"action_envs:{env_class}").validate()
    assert "\n" not in str(error.value) and expected in str(error.value), str(error.value)


def test_an_observation_with_no_legal_action_is_a_one_line_error_naming_the_env() -> None:
    algo = PPOConfig().environment(NO_LEGAL).env_runners(num_envs_per_env_runner=2).training(
        train_batch_size=64, minibatch_size=32).build_algo()
    try:
        with pytest.raises(ActionMaskError) as error:
            algo.train()
    finally:
        algo.stop()
    assert isinstance(error.value, ConfigError)  # what the CLI prints as one `rlrun: error:` line, exit 2
    assert str(error.value) == (
        f"env '{NO_LEGAL}' returned an observation whose action_mask allows no action ([0, 0, 0, 0, 0, 0]); an env "
        "must leave at least one legal action (one per sub-action of a MultiDiscrete space) while an episode runs")


def test_every_sub_action_of_an_acting_row_needs_a_legal_value_and_rows_that_do_not_act_need_none() -> None:
    space = gym.spaces.MultiDiscrete([3, 2])
    mask = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0]], dtype=torch.bool)
    check_legal(mask, np.array([False, False, True]), space, "game")  # rows 0 and 1 do not act: no error
    with pytest.raises(ActionMaskError, match=r"env 'game' .* allows no action \(\[1, 0, 0, 0, 0\]\)"):
        check_legal(mask, np.array([True, False, True]), space, "game")  # row 0's second sub-action has no value


def test_a_masked_policy_trains_through_the_cli_and_acts_legally_in_rlrun_eval(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONPATH": pythonpath_with_tests()}
    run_dir = tmp_path / "run"
    trained = subprocess.run([RLRUN, f"env.id={MASKED}", "stop.iterations=2", "algo.train_batch_size=64",
                              "algo.minibatch_size=32", "env_runners.num_envs_per_runner=2", "evaluation.episodes=4",
                              "logger.console=plain", "logger.tensorboard=false", f"hydra.run.dir={run_dir}"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert trained.returncode == 0, trained.stderr
    evaluated = subprocess.run([RLRUN_EVAL, f"checkpoint={run_dir}", "episodes=6"], capture_output=True,
                               text=True, env=env, cwd=tmp_path, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    (report,) = run_dir.glob("eval_*.json")
    assert json.loads(report.read_text())["episode_lens"] == [EPISODE_LEN] * 6  # an illegal move ends one early
    assert read_metrics(run_dir)[-1]["evaluation/episode_len_mean"] == EPISODE_LEN

    policy = rlrun.load(run_dir)  # deployment: the policy takes the env's own Dict observations
    masks = np.random.default_rng(0).integers(0, 2, (200, 6)).astype(np.int8)
    masks[:, 5] = 1
    batch = {"obs": np.eye(6, dtype=np.float32)[np.arange(200) % 6], "action_mask": masks}
    for explore in (False, True):
        actions = policy.compute_actions(batch, explore=explore)
        assert masks[np.arange(200), actions].all(), explore
    assert masks[0, policy.compute_action({"obs": batch["obs"][0], "action_mask": masks[0]})]


def test_ray_env_runner_samples_and_evaluates_legal_actions_only(ray_cluster, tmp_path: Path) -> None:
    """An env runner actor: its env's counter is out of reach, so the episode lengths tell (an illegal move ends one
    early)."""
    algo = (PPOConfig().environment(MASKED).env_runners(num_env_runners=1, num_envs_per_env_runner=4)
            .training(train_batch_size=256, minibatch_size=64).debugging(seed=0).build_algo())
    try:
        lengths = [algo.train()["env_runners"]["episode_len_mean"] for _ in range(3)]
        greedy = algo.evaluate(5)["evaluation"]
    finally:
        algo.stop()
    assert lengths == [EPISODE_LEN] * 3 and greedy["episode_len_mean"] == EPISODE_LEN, (lengths, greedy)

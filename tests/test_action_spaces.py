"""MultiDiscrete and MultiBinary actions (issue 26): their distributions against torch's, PPO learning each through
the CLI, IMPALA and APPO in-process, BC and MARWIL cloning a MultiDiscrete expert, DQN's and SAC's one-line refusal.

The envs (tests/action_envs.py) assert that every action they get lies in their space, and pay for matching a
target shown in the observation, so a return above random play's says the policy learned the space."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from action_envs import EPISODE_LEN, MultiDiscreteTargetEnv
from conftest import RLRUN, pythonpath_with_tests
from torch import distributions as td

import rlrun
from rlrun.algorithms.appo import APPOConfig
from rlrun.algorithms.bc import BCConfig
from rlrun.algorithms.dqn import DQNConfig
from rlrun.algorithms.impala import IMPALAConfig
from rlrun.algorithms.marwil import MARWILConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.algorithms.sac import SACConfig
from rlrun.config.errors import ConfigError
from rlrun.core.rl_module.distributions import Bernoulli, MultiCategorical
from rlrun.data.offline.writer import RecordedEpisode, write_dataset
from rlrun.run.recorder import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # the envs' module, for the in-process runs
MD_ENV, MB_ENV = "action_envs:MultiDiscreteTargetEnv", "action_envs:MultiBinaryTargetEnv"
# Returns of random play per episode: 1/3 + 1/2 a step (MultiDiscrete), 1/2 a step (MultiBinary).
MD_RANDOM, MB_RANDOM = EPISODE_LEN * (1 / 3 + 1 / 2), EPISODE_LEN * 0.5


# -- the distributions -----------------------------------------------------------------------


def test_multi_categorical_is_a_product_of_torch_categoricals() -> None:
    space = gym.spaces.MultiDiscrete([[3, 2], [4, 5]], start=[[1, 0], [-2, 0]])
    dist_cls = MultiCategorical.over(space)
    logits, other = torch.randn(6, 14), torch.randn(6, 14)
    mine, theirs = dist_cls.from_logits(logits), dist_cls.from_logits(other)
    parts = [td.Categorical(logits=p) for p in logits.split([3, 2, 4, 5], dim=-1)]
    other_parts = [td.Categorical(logits=p) for p in other.split([3, 2, 4, 5], dim=-1)]
    start = torch.tensor([1, 0, -2, 0])

    actions = mine.sample(torch.Generator().manual_seed(1))
    assert actions.shape == (6, 2, 2)
    flat = actions.reshape(6, 4) - start
    assert torch.allclose(mine.logp(actions), sum(p.log_prob(flat[:, i]) for i, p in enumerate(parts)))
    assert torch.allclose(mine.entropy(), sum(p.entropy() for p in parts))
    assert torch.allclose(mine.kl(theirs), sum(td.kl_divergence(p, q) for p, q in zip(parts, other_parts)), atol=1e-6)
    greedy = mine.deterministic_sample().reshape(6, 4) - start
    assert torch.equal(greedy, torch.stack([p.probs.argmax(-1) for p in parts], -1))


def test_multi_categorical_samples_each_sub_action_in_its_range_with_its_probabilities() -> None:
    space = gym.spaces.MultiDiscrete([3, 2], start=[5, 0])
    probs = torch.tensor([[0.2, 0.3, 0.5, 0.9, 0.1]])
    dist = MultiCategorical.over(space).from_logits(probs.log().expand(20000, 5))
    actions = dist.sample(torch.Generator().manual_seed(0)).numpy()
    assert set(actions[:, 0]) == {5, 6, 7} and set(actions[:, 1]) == {0, 1}
    assert np.allclose(np.bincount(actions[:, 0] - 5) / len(actions), [0.2, 0.3, 0.5], atol=0.015)
    assert np.allclose(np.bincount(actions[:, 1]) / len(actions), [0.9, 0.1], atol=0.015)


def test_bernoulli_matches_torch_and_samples_its_probabilities() -> None:
    dist_cls = Bernoulli.over(gym.spaces.MultiBinary([2, 3]))
    logits, other = torch.randn(5, 6), torch.randn(5, 6)
    mine, reference = dist_cls.from_logits(logits), td.Bernoulli(logits=logits)
    actions = mine.sample(torch.Generator().manual_seed(0))
    assert actions.shape == (5, 2, 3) and actions.dtype == torch.int8
    assert torch.allclose(mine.logp(actions), reference.log_prob(actions.reshape(5, 6).float()).sum(-1))
    assert torch.allclose(mine.entropy(), reference.entropy().sum(-1))
    kl = td.kl_divergence(reference, td.Bernoulli(logits=other)).sum(-1)
    assert torch.allclose(mine.kl(dist_cls.from_logits(other)), kl, atol=1e-6)
    assert torch.equal(mine.deterministic_sample().reshape(5, 6), (logits > 0).to(torch.int8))

    many = dist_cls.from_logits(logits[:1].expand(20000, 6)).sample(torch.Generator().manual_seed(1))
    assert np.allclose(many.float().mean(0).reshape(6), torch.sigmoid(logits[0]), atol=0.015)


# -- the algorithms --------------------------------------------------------------------------


def test_ppo_learns_multidiscrete_and_multibinary_actions_through_the_cli(tmp_path: Path) -> None:
    """One CLI sweep over both envs (one start-up). Random play scores 6.7 (MultiDiscrete) and 4 (MultiBinary), the
    mean of 32 such episodes with a std under 0.2; the greedy evaluation takes each sub-action's argmax."""
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {"PYTHONPATH": pythonpath_with_tests()}
    proc = subprocess.run(
        [RLRUN, "-m", f"env.id={MD_ENV},{MB_ENV}", "stop.iterations=10", "algo.train_batch_size=256",
         "algo.minibatch_size=64", "algo.num_epochs=4", "algo.lr=0.003", "env_runners.num_envs_per_runner=4",
         "evaluation.episodes=8", f"hydra.sweep.dir={tmp_path}", "logger.console=plain", "logger.tensorboard=false"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    for job, better_than in ((0, MD_RANDOM + 1.5), (1, MB_RANDOM + 0.5)):
        last = read_metrics(tmp_path / str(job))[-1]
        assert last["env_runners/episode_return_mean"] > better_than, (job, last)
        assert last["evaluation/episode_return_mean"] > better_than, (job, last)

    targets = np.array([[0, 1], [2, 0], [1, 1]])  # rlrun.load's policy acts in the space, on the target it is shown
    actions = rlrun.load(tmp_path / "0").compute_actions(np.concatenate([np.eye(3)[targets[:, 0]],
                                                                         np.eye(2)[targets[:, 1]]], axis=1))
    assert actions.shape == (3, 2) and ((actions >= 0) & (actions < [3, 2])).all(), actions
    bits = rlrun.load(tmp_path / "1").compute_actions(np.eye(4, dtype=np.float32), explore=True)
    assert bits.shape == (4, 4) and set(bits.ravel().tolist()) <= {0, 1}, bits


@pytest.mark.parametrize("config_cls", [IMPALAConfig, APPOConfig])
def test_impala_and_appo_train_multidiscrete_and_multibinary_policies(config_cls) -> None:
    for env_id in (MD_ENV, MB_ENV):
        algo = (config_cls().environment(env_id).env_runners(num_envs_per_env_runner=4)
                .training(train_batch_size=128, lr=1e-2).debugging(seed=0).build_algo())
        try:
            first = algo.train()["learners"]["default_policy"]
            for _ in range(14):
                result = algo.train()
        finally:
            algo.stop()
        learner = result["learners"]["default_policy"]
        assert all(np.isfinite(v) for v in learner.values()), learner
        assert learner["entropy"] < first["entropy"], (first, learner)  # the policy sharpens
        if env_id == MD_ENV:
            # Seeds 0-2 reach 10.7-11.6 (IMPALA) and 12.5-13.8 (APPO) here.
            assert result["env_runners"]["episode_return_mean"] > MD_RANDOM + 2.5, result["env_runners"]


def _expert_dataset(path: Path) -> str:
    """30 episodes of the MultiDiscrete expert (every sub-action on its target), as a Minari dataset."""
    env, episodes = MultiDiscreteTargetEnv(), []
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        steps: dict[str, list] = {"obs": [obs], "act": [], "rew": []}
        for _ in range(EPISODE_LEN):
            action = env.target.copy()
            obs, reward, *_ = env.step(action)
            for key, value in (("obs", obs), ("act", action), ("rew", reward)):
                steps[key].append(value)
        done = np.arange(EPISODE_LEN) == EPISODE_LEN - 1
        episodes.append(RecordedEpisode(
            observations=np.asarray(steps["obs"], np.float32), actions=np.asarray(steps["act"]),
            rewards=np.asarray(steps["rew"], np.float32), terminations=done, truncations=np.zeros_like(done),
            action_logp=np.zeros(EPISODE_LEN, np.float32)))
    write_dataset(str(path), episodes, env_id=MD_ENV, observation_space=env.observation_space,
                  action_space=env.action_space, algorithm_name="test", rlrun_metadata={"env": MD_ENV})
    return str(path)


def test_bc_and_marwil_clone_a_multidiscrete_expert(tmp_path: Path) -> None:
    dataset = _expert_dataset(tmp_path / "md-expert-v0")
    for config_cls in (BCConfig, MARWILConfig):
        algo = (config_cls().environment(MD_ENV).offline_data(dataset=dataset)
                .env_runners(num_envs_per_env_runner=2).training(lr=1e-2, train_batch_size=64).build_algo())
        try:
            for _ in range(30):
                algo.train()
            greedy = algo.evaluate(8)["evaluation"]["episode_return_mean"]
        finally:
            algo.stop()
        assert greedy == 2 * EPISODE_LEN, (config_cls.__name__, greedy)


@pytest.mark.parametrize(("config_cls", "env_id", "space"), [(DQNConfig, MD_ENV, "MultiDiscrete"),
                                                            (SACConfig, MB_ENV, "MultiBinary")])
def test_dqn_and_sac_refuse_multi_action_spaces_naming_the_algorithms_that_take_them(config_cls, env_id: str,
                                                                                      space: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_cls().environment(env_id).validate()
    message = str(error.value)
    assert "\n" not in message and f"does not support env '{env_id}'" in message, message
    assert message.endswith(f"algorithms that take {space}: ppo, impala, appo, bc, marwil"), message


def test_a_discrete_action_space_that_does_not_start_at_zero_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        PPOConfig().environment("action_envs:ShiftedDiscreteEnv").validate()
    assert str(error.value) == ("env 'action_envs:ShiftedDiscreteEnv' has action space Discrete(3, start=1): the "
                                "policies act in 0..n-1, so a Discrete action space must start at 0 (MultiDiscrete "
                                "may start elsewhere)")

"""Multi-agent PettingZoo envs: mapping agents to modules, masking, per-module learning, resume, Ray, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import pythonpath_with_tests
from test_reproducibility import assert_resumes_exactly

from rlrun.algorithms.dqn import DQNConfig
from rlrun.algorithms.impala import IMPALAConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.config.errors import ConfigError
from rlrun.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner
from rlrun.env.multi_agent.mapping import MappingError, PolicyMapping
from rlrun.env.multi_agent.multi_cartpole import MultiCartPole
from rlrun.run.recorder import flatten, read_metrics

MULTI_CARTPOLE = "rlrun.env.multi_agent.multi_cartpole:MultiCartPole"


@pytest.fixture(autouse=True)
def _tests_importable(monkeypatch):
    """`multi_agent_envs` (this folder) for this process and the rlrun subprocesses."""
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())


def multi_cartpole(policies="independent", num_agents: int = 2, **training) -> PPOConfig:
    return (
        PPOConfig()
        .environment(MULTI_CARTPOLE, env_config={"num_agents": num_agents})
        .env_runners(num_envs_per_env_runner=4)
        .training(**{"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 2, "lr": 1e-3, **training})
        .multi_agent(policies=policies)
        .debugging(seed=3)
    )


# -- mapping -------------------------------------------------------------------------


def test_shared_independent_and_pattern_mappings():
    env = MultiCartPole(num_agents=3)
    agents = env.possible_agents
    assert PolicyMapping("shared", None, agents, env).agent_to_module == dict.fromkeys(agents, DEFAULT_MODULE_ID)
    assert PolicyMapping("independent", None, agents, env).agent_to_module == {a: a for a in agents}
    listed = PolicyMapping(["solo", "pair"], {"agent_0": "solo", "agent_*": "pair"}, agents, env)
    assert listed.agent_to_module == {"agent_0": "solo", "agent_1": "pair", "agent_2": "pair"}
    assert listed.agents_of == {"solo": ["agent_0"], "pair": ["agent_1", "agent_2"]}


@pytest.mark.parametrize(("policies", "patterns", "message"), [
    (["a"], {"agent_0": "a"}, "agent 'agent_1' matches no pattern"),
    (["a"], {"*": "b"}, "maps to ['b'], which multi_agent.policies ['a'] does not list"),
    ("everyone", {}, "must be shared, independent or a list"),
])
def test_a_mapping_that_does_not_fit_names_the_problem(policies, patterns, message):
    env = MultiCartPole(num_agents=2)
    with pytest.raises(MappingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PolicyMapping(policies, patterns, env.possible_agents, env)


def test_agents_with_different_spaces_cannot_share_a_module():
    config = PPOConfig().environment("multi_agent_envs:MixedSpacesEnv").multi_agent(policies="shared")
    with pytest.raises(ConfigError, match=r"agents mapped to module 'default_policy' have different spaces "
                                          r"\(early: obs Box.*\(2,\).*late: obs Box.*\(3,\)"):
        config.validate()
    PPOConfig().environment("multi_agent_envs:MixedSpacesEnv").multi_agent(policies="independent").validate()


# -- sampling --------------------------------------------------------------------------


def test_agents_that_leave_early_or_join_late_are_masked_never_padded_into_the_loss():
    config = (PPOConfig().environment("multi_agent_envs:StaggeredEnv").env_runners(num_envs_per_env_runner=2)
              .multi_agent(policies="independent"))
    runner = MultiAgentEnvRunner(config.env_runner_spec())
    batch = runner.sample(num_timesteps=2 * 8)  # 8 steps of 2 copies: 5 steps, a reset row, 2 steps
    assert batch.env_steps == 2 * 7 and batch.env_slots == 16
    mask = {m: b[Columns.LOSS_MASK][:, 0] for m, b in batch.items()}  # copy 0
    assert mask["early"].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
    assert mask["long"].tolist() == [1, 1, 1, 1, 1, 0, 1, 1]
    assert mask["late"].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    early, long = batch["early"], batch["long"]
    assert early[Columns.TERMINATEDS][:, 0].tolist() == [0, 1, 0, 0, 0, 0, 0, 1]
    assert long[Columns.TRUNCATEDS][:, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    # A gone agent keeps its last observation: the final one, which a truncated episode bootstraps from.
    assert early[Columns.OBS][2:6, 0, 0].tolist() == [2, 2, 2, 2]
    assert long[Columns.OBS][5, 0, 0] == 5 and long[Columns.OBS][6, 0, 0] == 0  # reset row, then the new episode
    assert early[Columns.REWARDS][:, 0].tolist() == [1, 1, 0, 0, 0, 0, 1, 1]
    metrics = runner.get_metrics()
    assert metrics["episode_returns"] == [2 + 5 + 3] * 2 and metrics["episode_lens"] == [5, 5]
    assert {a: r for a, r in metrics["agent_episode_returns"].items()} == {"early": [2, 2], "long": [5, 5],
                                                                            "late": [3, 3]}
    # The learner drops masked rows: every module trains on its live rows only.
    learner = config.build_learner(env=runner.env)
    learner.build()
    for module_id, module_batch in batch.items():
        rows = learner.build_train_batch(module_id, module_batch)
        assert len(rows[Columns.OBS]) == int(module_batch[Columns.LOSS_MASK].sum())


def test_one_batched_forward_pass_per_module_per_step():
    runner = MultiAgentEnvRunner(multi_cartpole("shared", num_agents=3).env_runner_spec())
    calls = []
    module = runner.module[DEFAULT_MODULE_ID]
    original = module.forward_exploration
    module.forward_exploration = lambda batch: (calls.append(len(batch[Columns.OBS])), original(batch))[1]
    runner.sample(num_timesteps=4 * 3)
    assert calls == [4 * 3] * 3  # 3 steps, each one pass over 4 copies x 3 agents


def test_a_central_value_function_sees_the_agents_observation_and_the_global_state():
    """MAPPO: every column of an env copy carries that copy's state (MultiCartPole's `state()`: both poles)."""
    config = multi_cartpole("shared").rl_module(model_config={"central_value": True})
    config.validate()
    runner = MultiAgentEnvRunner(config.env_runner_spec())
    batch = runner.sample(num_timesteps=4 * 3)[DEFAULT_MODULE_ID]
    state, obs = batch[Columns.STATE], batch[Columns.OBS]
    assert state.shape == (3, 4 * 2, 8) and batch[Columns.BOOTSTRAP_STATE].shape == (4 * 2, 8)
    # Columns are (copy, agent) pairs: copy 0's two agents first. Each sees both poles; its own obs is its pole.
    np.testing.assert_array_equal(state[0, 0], state[0, 1])
    np.testing.assert_allclose(state[0, 0], np.concatenate([obs[0, 0], obs[0, 1]]), rtol=1e-6)
    np.testing.assert_allclose(batch[Columns.BOOTSTRAP_STATE][0],
                               np.concatenate(runner.envs[0].state().reshape(2, 4)), rtol=1e-6)
    module = runner.module[DEFAULT_MODULE_ID]
    assert module.vf.head[0].in_features == 4 + 8 and module.pi.head[0].in_features == 4
    learner = config.build_learner(env=runner.env)
    learner.build()
    results = learner.update(batch={DEFAULT_MODULE_ID: batch})
    assert np.isfinite(results[DEFAULT_MODULE_ID]["vf_loss"])


@pytest.mark.parametrize(("build", "message"), [
    (lambda: PPOConfig().rl_module(model_config={"central_value": True}),
     "model.central_value needs a multi-agent env; 'CartPole-v1' is single-agent"),
    (lambda: IMPALAConfig().environment(MULTI_CARTPOLE).rl_module(model_config={"central_value": True}),
     "model.central_value is a PPO feature"),
    # Without a state() the global state would be the agents' packed Dict observations, bytes read as numbers.
    (lambda: PPOConfig().environment("structured_envs:CueAgentsEnv").rl_module(model_config={"central_value": True}),
     r"model.central_value needs Box agent observations; 'structured_envs:CueAgentsEnv' gives structured ones, .* "
     r"\(got Dict\('cue': Discrete\(2\)"),
])
def test_a_central_value_function_outside_multi_agent_ppo_is_refused(build, message):
    with pytest.raises(ConfigError, match=message):
        build().validate()


# -- learning ----------------------------------------------------------------------------


def test_each_module_trains_on_its_own_rows_and_frozen_policies_keep_their_weights():
    algo = multi_cartpole().multi_agent(policies_to_train=["agent_0"]).build_algo()
    try:
        before = algo.learner_group.get_weights()
        results = algo.train()
        after = algo.learner_group.get_weights()
    finally:
        algo.stop()
    assert set(results["learners"]) == {"agent_0"}
    assert any(not np.array_equal(before["agent_0"][k], after["agent_0"][k]) for k in before["agent_0"])
    assert all(np.array_equal(before["agent_1"][k], after["agent_1"][k]) for k in before["agent_1"])
    env_runners = results["env_runners"]
    assert set(env_runners["agent_episode_return_mean"]) == {"agent_0", "agent_1"}
    assert set(env_runners["module_episode_return_mean"]) == {"agent_0", "agent_1"}
    # The episode return is the sum over agents (RLlib's convention).
    per_agent = sum(env_runners["agent_episode_return_mean"].values())
    assert env_runners["episode_return_mean"] == pytest.approx(per_agent)


def test_init_from_starts_modules_from_a_checkpoint_and_a_frozen_one_keeps_those_weights(tmp_path: Path):
    """A fixed opponent: agent_1 comes from another run's checkpoint and is not trained."""
    donor = multi_cartpole().debugging(seed=7).build_algo()
    try:
        donor.train()
        donor.save_to_path(tmp_path / "donor")
        donor_weights = donor.learner_group.get_weights()
    finally:
        donor.stop()
    algo = multi_cartpole().multi_agent(policies_to_train=["agent_0"], init_from=str(tmp_path / "donor")).build_algo()
    try:
        start = algo.learner_group.get_weights()
        algo.train()
        after = algo.learner_group.get_weights()
    finally:
        algo.stop()
    for module_id in ("agent_0", "agent_1"):
        assert all(np.array_equal(start[module_id][k], donor_weights[module_id][k]) for k in start[module_id])
    assert all(np.array_equal(after["agent_1"][k], donor_weights["agent_1"][k]) for k in after["agent_1"])
    assert any(not np.array_equal(after["agent_0"][k], donor_weights["agent_0"][k]) for k in after["agent_0"])


def test_init_from_a_checkpoint_that_does_not_fit_is_one_line(run_cli, tmp_path: Path):
    missing = run_cli("env=multi_cartpole", f"multi_agent.init_from={tmp_path / 'nowhere'}", "stop.iterations=1")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"rlrun: error: multi_agent.init_from: checkpoint directory {tmp_path / 'nowhere'} does not exist"]


def test_policies_to_train_must_name_policies_that_exist():
    with pytest.raises(ConfigError, match=r"policies_to_train must list some of the policies \['agent_0', "):
        multi_cartpole().multi_agent(policies_to_train=["agent_7"]).validate()


def test_algorithms_without_multi_agent_support_refuse_it_in_one_line():
    with pytest.raises(ConfigError, match="algo=dqn does not support multi-agent envs"):
        DQNConfig().environment(MULTI_CARTPOLE).validate()


def test_a_run_resumes_exactly_mid_episode(tmp_path: Path):
    tail = assert_resumes_exactly(multi_cartpole, tmp_path / "checkpoint")
    assert "env_runners/agent_episode_return_mean/agent_1" in flatten(tail[-1])


@pytest.mark.ray
def test_ray_runners_and_two_ddp_learners_update_every_module_like_the_local_learner(ray_cluster):
    """Remote multi-agent runners' batches merge module by module; 2 DDP learners end the local learner's update."""
    config = multi_cartpole().env_runners(num_env_runners=2, num_envs_per_env_runner=2)
    algo = config.build_algo()
    try:
        batch, env_steps = algo.env_runner_group.sample()
        assert set(batch) == {"agent_0", "agent_1"} and env_steps == batch.env_steps > 0
        assert batch["agent_0"][Columns.OBS].shape[1] == 2 * 2  # 2 runners x 2 copies x 1 agent per module
        metrics = algo.env_runner_group.get_metrics()
    finally:
        algo.stop()
    assert isinstance(metrics["agent_episode_returns"], dict)
    local = config.copy().env_runners(num_env_runners=0).build_learner_group(env=algo.env_runner_group.env)
    ddp = config.copy().learners(num_learners=2).build_learner_group(env=algo.env_runner_group.env)
    try:
        for _ in range(2):
            local.update(batch=batch)
            ddp.update(batch=batch)
        expected, got = local.get_state()[COMPONENT_RL_MODULE], ddp.get_state()[COMPONENT_RL_MODULE]
        for module_id in ("agent_0", "agent_1"):
            for name, value in expected[module_id].items():
                torch.testing.assert_close(torch.tensor(got[module_id][name]), torch.tensor(value),
                                           rtol=1e-5, atol=1e-6)
    finally:
        ddp.stop()


def test_cli_trains_and_evaluates_a_pettingzoo_env(run_cli, tmp_path: Path):
    result = run_cli("env=multi_cartpole", "multi_agent.policies=independent", "stop.iterations=2",
                     "algo.train_batch_size=256", "algo.minibatch_size=64", "algo.num_epochs=1",
                     "evaluation.episodes=2")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run"
    last = read_metrics(run_dir)[-1]
    for key in ("env_runners/episode_return_mean", "env_runners/agent_episode_return_mean/agent_0",
                "env_runners/module_episode_return_mean/agent_1", "learners/agent_0/policy_loss",
                "learners/agent_1/policy_loss", "evaluation/episode_return_mean"):
        assert key in last, key
    learner_dir = run_dir / "checkpoints" / "final" / "learner_group"
    assert sorted(p.name for p in learner_dir.glob("module_*")) == ["module_agent_0.safetensors",
                                                                    "module_agent_1.safetensors"]
    evaluate = subprocess.run([str(Path(sys.executable).with_name("rlrun-eval")), f"checkpoint={run_dir}",
                               "episodes=2"], capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    report = json.loads(next(run_dir.glob("eval_*.json")).read_text())
    assert report["episode_return_mean"] > 0  # the video of a PettingZoo env: the MPE test below


def test_cli_mismatched_spaces_is_one_line_and_leaves_nothing(run_cli, tmp_path: Path):
    result = run_cli("env.id=multi_agent_envs:MixedSpacesEnv", "multi_agent.policies=shared")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun: error: agents mapped to module 'default_policy' have "
                                                   "different spaces (early: obs Box"), result.stderr
    assert not (tmp_path / "run").exists()


def test_an_aec_env_goes_through_pettingzoos_conversion():
    from pettingzoo.utils.conversions import aec_to_parallel_wrapper

    from rlrun.env.multi_agent.creation import make_parallel_env

    env = make_parallel_env("mpe2.simple_spread_v3:env", {"N": 2})
    assert isinstance(env, aec_to_parallel_wrapper) and env.possible_agents == ["agent_0", "agent_1"]
    env.close()
    assert make_parallel_env("CartPole-v1") is None and make_parallel_env("corridor_env:CorridorEnv") is None


def test_mpe_simple_spread_with_mappo_trains_and_renders_through_the_cli(run_cli, tmp_path: Path):
    """mpe2 (pygame-ce) renders beside gymnasium's classic control (tests/test_eval.py films CartPole)."""
    result = run_cli("env=simple_spread", "model.central_value=true", "stop.iterations=1", "evaluation.episodes=2",
                     "algo.train_batch_size=200", "algo.minibatch_size=100", "algo.num_epochs=1")
    assert result.returncode == 0, result.stderr
    assert "learners/default_policy/vf_loss" in read_metrics(tmp_path / "run")[-1]
    evaluate = subprocess.run([str(Path(sys.executable).with_name("rlrun-eval")), f"checkpoint={tmp_path / 'run'}",
                               "episodes=1", "video=true", "video_format=gif"],
                              capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr
    assert next((tmp_path / "run" / "videos").glob("*.gif")).stat().st_size > 0

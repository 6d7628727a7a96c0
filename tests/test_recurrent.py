"""Recurrent policies (issue 27): sequence cutting, state carried by the env runners, replay by the learner.

The core check: a learner replaying a sampled batch as sequences from the recorded states, with the
runner's weights, computes exactly the action distribution inputs the runner sampled with. That holds
only if the runner reset the state where episodes start and nowhere else, recorded the state fed to
every row, and the learner cut sequences that never cross an episode start.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_reproducibility import assert_resumes_exactly

from rlrun.algorithms.algorithm import load_module_weights
from rlrun.algorithms.ppo import PPOConfig
from rlrun.config.errors import ConfigError
from rlrun.core.columns import BOOTSTRAP_COLUMNS, DEFAULT_MODULE_ID, RECURRENT_STEP_INPUTS, Columns
from rlrun.core.learner.sequences import Sequences, episode_starts
from rlrun.core.rl_module.catalog import CNNEncoder
from rlrun.env.env_runner import EnvRunner
from rlrun.policy import Policy


def recurrent_config(cell: str = "lstm", **model) -> PPOConfig:
    return (PPOConfig().environment("StatelessCartPole-v1")
            .env_runners(num_envs_per_env_runner=3, rollout_fragment_length=50)
            .training(train_batch_size=150, minibatch_size=50, num_epochs=2)
            .rl_module(model_config={f"use_{cell}": True, "lstm_cell_size": 8, "max_seq_len": 7, **model}))


# -- cutting -----------------------------------------------------------------------------------------------

def test_sequences_start_at_episode_starts_and_every_max_seq_len_steps() -> None:
    loss_mask = np.ones((10, 2), dtype=bool)
    loss_mask[3, 0] = False  # copy 0's autoreset row: its episode ended at row 2, the next starts at row 4
    sequences = Sequences.cut(loss_mask, max_seq_len=4)
    steps = [sequences.rows[n][sequences.mask[n]] for n in range(len(sequences))]
    # Rows are t * 2 + copy. Copy 0: rows 0-3 (the autoreset row closes the old episode), then 4-7, 8-9.
    assert [list(s // 2) for s in steps if s[0] % 2 == 0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [list(s // 2) for s in steps if s[0] % 2 == 1] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    loss_mask[1, 1] = False  # copy 1's episode starts at row 2
    sequences = Sequences.cut(loss_mask, max_seq_len=4)
    copy1 = [list(sequences.rows[n][sequences.mask[n]] // 2) for n in range(len(sequences))
             if sequences.rows[n, 0] % 2 == 1]
    assert copy1 == [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    column = np.arange(20).reshape(10, 2)
    np.testing.assert_array_equal(sequences.scatter(sequences.gather(column)), column)
    np.testing.assert_array_equal(sequences.first(column), sequences.rows[:, 0])


# -- runner and learner ------------------------------------------------------------------------------------

PREVIOUS = {"lstm_use_prev_action": True, "lstm_use_prev_reward": True}


@pytest.mark.parametrize(("cell", "previous"), [("lstm", {}), ("gru", {}), ("lstm", PREVIOUS)])
def test_the_learner_replays_exactly_what_the_runner_sampled(cell: str, previous: dict) -> None:
    config = recurrent_config(cell, **previous)
    runner = EnvRunner(config.env_runner_spec())
    runner.sample()  # carry states across fragments: the second batch starts mid-episode
    assert_replayed_exactly(config, runner.sample(), runner.module.get_state(), num_envs=3)


def test_pixels_go_through_the_cnn_then_the_lstm_and_replay_exactly() -> None:
    """The recurrent core sits after whichever encoder the catalog picks: uint8 frames, a CNN, then the LSTM."""
    config = recurrent_config().environment("pixel_envs:PixelEnv", env_config={"size": 8}).rl_module(
        model_config={"use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 7, "cnn": "small"})
    runner = EnvRunner(config.env_runner_spec())
    assert isinstance(runner.module.pi.torso[0], CNNEncoder)
    runner.sample()
    batch = runner.sample()
    assert batch[Columns.OBS].dtype == np.uint8
    assert_replayed_exactly(config, batch, runner.module.get_state(), num_envs=3, env=runner.env)


def assert_replayed_exactly(config: PPOConfig, batch: dict[str, np.ndarray], weights: dict, num_envs: int,
                            env: gym.Env | None = None) -> None:
    """`batch`, a runner's second fragment (it starts mid-episode), carried each env copy's state: each episode
    starts from the initial state, and a learner with the runner's `weights` replays every action's inputs
    and the bootstrap values from the states the batch recorded."""
    loss_mask = batch[Columns.LOSS_MASK]
    assert (~loss_mask).sum() >= 3, "episodes must end inside the fragment for this test to check resets"
    # The state fed to each episode's first row is the initial one; elsewhere the state moves on.
    starts = episode_starts(loss_mask)
    starts[0] = False  # the fragment's first rows continue episodes of the first fragment
    assert not batch[Columns.STATE_IN][starts].any()
    assert np.abs(batch[Columns.STATE_IN][~starts]).sum(axis=-1).min() > 0
    if config.model_config.get("lstm_use_prev_action"):
        # The previous action and reward: zeros where an episode starts, else the row before's.
        for column, of in ((Columns.PREV_ACTIONS, Columns.ACTIONS), (Columns.PREV_REWARDS, Columns.REWARDS)):
            assert not batch[column][starts].any()
            np.testing.assert_array_equal(batch[column][1:][~starts[1:]], batch[of][:-1][~starts[1:]])

    learner = config.build_learner(env=env or gym.make(config.env))
    learner.build()
    trains = assert_sequences_replay(learner, DEFAULT_MODULE_ID, batch, weights)
    assert int(trains.sum()) == int(loss_mask.sum())  # every trained row once, no autoreset row
    assert trains.shape[1] == 7

    # The bootstrap value continues each copy's last sequence from the state after the fragment.
    values, bootstrap = learner.fragment_values(DEFAULT_MODULE_ID, batch)
    assert values.shape == loss_mask.shape and bootstrap.shape == (num_envs,)
    module = learner.module[DEFAULT_MODULE_ID]
    bootstrap_inputs = {column: torch.as_tensor(batch[BOOTSTRAP_COLUMNS[column]])[:, None]
                        for column in RECURRENT_STEP_INPUTS if BOOTSTRAP_COLUMNS[column] in batch}
    with torch.no_grad():
        one_step = module.compute_values({**bootstrap_inputs,
                                          Columns.STATE_IN: torch.as_tensor(batch[Columns.BOOTSTRAP_STATE_IN])})
    np.testing.assert_allclose(bootstrap, one_step[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def assert_sequences_replay(learner, module_id: str, batch: dict[str, np.ndarray], weights: dict) -> torch.Tensor:
    """With the runner's `weights`, the learner's sequences of `batch` give every trained row the action inputs
    the runner sampled with; returns the trained rows' mask."""
    learner.module[module_id].set_state(weights)
    rows = learner.sequence_batch(batch)
    with torch.no_grad():
        replayed = learner.module[module_id].forward_train(rows)[Columns.ACTION_DIST_INPUTS]
    trains = rows[Columns.LOSS_MASK]
    np.testing.assert_allclose(replayed[trains].numpy(), rows[Columns.ACTION_DIST_INPUTS][trains].numpy(),
                               rtol=1e-5, atol=1e-6)
    return trains


def test_env_runner_actors_carry_the_state_the_learner_replays(ray_cluster) -> None:
    """On Ray: two env runner actors carry their copies' states across fragments, and the batch they send back
    (merged on the env axis) replays exactly on the driver's learner."""
    config = recurrent_config().env_runners(num_env_runners=2)
    algo = config.build_algo()
    try:
        assert algo.env_runner_group.is_remote
        algo.env_runner_group.sample()
        batch, _ = algo.env_runner_group.sample()
        weights = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]  # what the runners were sent at the start
    finally:
        algo.stop()
    assert_replayed_exactly(config, batch, weights, num_envs=6)


@pytest.mark.parametrize(("algo", "previous"), [("impala", {}), ("appo", PREVIOUS)])
def test_impala_and_appo_replay_whole_trajectories_exactly(algo: str, previous: dict) -> None:
    """Their rows are env columns crossing episode starts: the module cuts them into sequences itself."""
    from rlrun.algorithms.registry import get_algorithm_config_class

    config = get_algorithm_config_class(algo)().environment("StatelessCartPole-v1").env_runners(
        num_envs_per_env_runner=3, rollout_fragment_length=50).training(train_batch_size=150, minibatch_size=50)
    config = config.rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 7, **previous})
    runner = EnvRunner(config.env_runner_spec())
    runner.sample()
    batch = runner.sample()
    assert (~batch[Columns.LOSS_MASK]).sum() >= 3
    learner = config.build_learner(env=runner.env)
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]
    module.set_state({**module.get_state(), **runner.module.get_state()})  # APPO's target keeps its own copy
    columns = learner.build_train_batch(DEFAULT_MODULE_ID, batch)  # [B, T]
    with torch.no_grad():
        replayed = module.forward_train(columns)[Columns.ACTION_DIST_INPUTS]
    trains = columns[Columns.LOSS_MASK].bool()
    np.testing.assert_allclose(replayed[trains].numpy(), columns[Columns.ACTION_DIST_INPUTS][trains].numpy(),
                               rtol=1e-5, atol=1e-6)
    trainer = config.build_algo()
    try:
        result = trainer.train()
    finally:
        trainer.stop()
    assert np.isfinite(result["learners"][DEFAULT_MODULE_ID]["total_loss"])


def test_a_recurrent_ppo_update_trains_on_sequences_and_counts_steps() -> None:
    algo = recurrent_config().build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"][DEFAULT_MODULE_ID]
    assert np.isfinite(learner["total_loss"])
    # Every trained step once per epoch: the batch's rows less its autoreset rows, twice.
    assert 0 < learner["num_module_steps_trained"] <= 2 * 150


def test_each_module_of_a_multi_agent_run_carries_its_columns_memories() -> None:
    """Agents that leave early, join late or wait out a reset row (StaggeredEnv) start each stretch of play from
    the initial state, and each module's learner replays its columns' batch exactly."""
    from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner

    config = (PPOConfig().environment("multi_agent_envs:StaggeredEnv").env_runners(num_envs_per_env_runner=2)
              .multi_agent(policies="independent")
              .rl_module(model_config={"use_gru": True, "lstm_cell_size": 8, "max_seq_len": 3, **PREVIOUS}))
    runner = MultiAgentEnvRunner(config.env_runner_spec())
    batch = runner.sample(num_timesteps=2 * 8)
    learner = config.build_learner(env=runner.env)
    learner.build()
    for module_id, columns in batch.items():
        starts = episode_starts(columns[Columns.LOSS_MASK])
        live = columns[Columns.LOSS_MASK]
        assert not columns[Columns.STATE_IN][starts | ~live].any(), module_id
        assert np.abs(columns[Columns.STATE_IN][live & ~starts]).sum(axis=-1).min() > 0, module_id
        assert_sequences_replay(learner, module_id, columns, runner.module[module_id].get_state())


def test_a_multi_agent_recurrent_run_trains_and_resumes_exactly(tmp_path: Path) -> None:
    from test_multi_agent import multi_cartpole

    tail = assert_resumes_exactly(lambda: multi_cartpole().env_runners(rollout_fragment_length=24).rl_module(
        model_config={"use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 8}), tmp_path / "ckpt", iterations=2,
        at=1)
    assert set(tail[-1]["learners"]) >= {"agent_0", "agent_1"}


def test_a_video_of_a_multi_agent_run_carries_each_agents_memory() -> None:
    """rlrun-eval's episode player steps each agent of a recurrent module with its own memory, from the initial
    state at the episode's first step on, for as long as the agent plays (a frame per step, and the first)."""
    from test_multi_agent import multi_cartpole

    from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner
    from rlrun.env.multi_agent.multi_cartpole import MultiCartPole
    from rlrun.run.video import _play_agents

    config = multi_cartpole(num_agents=2).rl_module(model_config={"use_lstm": True, "lstm_cell_size": 8, **PREVIOUS})
    runner = MultiAgentEnvRunner(config.env_runner_spec())
    env = MultiCartPole(num_agents=2, max_steps=20, render_mode="rgb_array")
    calls = []
    module = runner.module["agent_0"]
    original = module.forward_inference
    module.forward_inference = lambda batch: (calls.append(batch[Columns.STATE_IN].clone()), original(batch))[1]
    frames = _play_agents(runner.module, runner.mapping.agent_to_module, env, seed=0)
    env.close()
    assert len(frames) >= len(calls) + 1 > 2 and frames[0].ndim == 3  # agent_0's pole may fall first
    assert not calls[0].any() and all(state.abs().sum() > 0 for state in calls[1:])  # carried from step to step


# -- refusals ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "algo", "message"), [
    ({"use_lstm": True, "use_gru": True}, "ppo", "model.use_lstm and model.use_gru exclude each other"),
    ({"max_seq_len": 30}, "ppo", "model.max_seq_len is for recurrent models"),
    ({"lstm_cell_size": 64}, "ppo", "model.lstm_cell_size is for recurrent models"),
    ({"lstm_use_prev_reward": True}, "ppo", "model.lstm_use_prev_reward is for recurrent models"),
    ({"use_lstm": True}, "dqn", "model.use_lstm: algo=dqn has no recurrent models yet; algorithms that do: ppo, "
                                "impala, appo"),
    ({"use_gru": True}, "sac", "model.use_gru: algo=sac has no recurrent models yet"),
    ({"use_lstm": True, "central_value": True}, "multi_cartpole",
     "model.central_value and model.use_lstm / model.use_gru exclude each other"),
    ({"use_lstm": True}, "tictactoe", "is a turn-based game, whose runner does not carry recurrent states yet"),
])
def test_recurrent_keys_that_cannot_apply_are_refused(model: dict, algo: str, message: str) -> None:
    from rlrun.algorithms.registry import get_algorithm_config_class

    envs = {"sac": "StatelessPendulum-v1", "multi_cartpole": "rlrun.env.multi_agent.multi_cartpole:MultiCartPole",
            "tictactoe": "pettingzoo.classic.tictactoe_v3"}
    env = envs.get(algo, "StatelessCartPole-v1")
    algo = "ppo" if algo in envs and algo != "sac" else algo
    config = get_algorithm_config_class(algo)().environment(env).rl_module(model_config=model)
    with pytest.raises(ConfigError, match=message):
        config.validate()


# -- resume, rlrun.load, video -----------------------------------------------------------------------------

@pytest.mark.parametrize("previous", [{}, PREVIOUS])
def test_a_recurrent_run_resumes_exactly_in_the_middle_of_episodes(tmp_path: Path, previous: dict) -> None:
    """Fragments of 50 steps end mid-episode: the runner's memories are part of the checkpoint."""
    tail = assert_resumes_exactly(lambda: recurrent_config(**previous), tmp_path / "ckpt", iterations=3, at=1)
    assert tail[-1]["training_iteration"] == 3


@pytest.mark.parametrize("previous", [{}, PREVIOUS])
def test_a_loaded_recurrent_policy_carries_its_state_like_the_runner(tmp_path: Path, previous: dict) -> None:
    config = recurrent_config(**previous)
    algo = config.build_algo()
    try:
        algo.train()
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    policy_module = recurrent_config(**previous).env_runner_spec().module
    runner = EnvRunner(config.env_runner_spec())
    runner.set_weights({DEFAULT_MODULE_ID: load_module_weights(tmp_path / "ckpt")[DEFAULT_MODULE_ID]})
    batch = runner.sample(explore=False)
    policy = Policy({DEFAULT_MODULE_ID: _built(policy_module, runner)}, None, tmp_path / "ckpt")
    # The runner's greedy actions, step by step from the same observations, with episode starts marked.
    starts = episode_starts(batch[Columns.LOSS_MASK])
    for t in range(len(starts)):
        actions = policy.compute_actions(batch[Columns.OBS][t], episode_start=starts[t] if t else np.ones(3, bool),
                                         rewards=batch[Columns.REWARDS][t - 1] if t else None)
        np.testing.assert_array_equal(actions, batch[Columns.ACTIONS][t])
    if previous:  # a model that reads the previous reward needs it
        with pytest.raises(ValueError, match="reads the previous reward"):
            policy.compute_actions(batch[Columns.OBS][0])
    policy.reset()
    first = policy.compute_action(batch[Columns.OBS][0][0])
    assert first == batch[Columns.ACTIONS][0][0]


def _built(spec, runner: EnvRunner):
    module = spec.build(runner.observation_space, runner.action_space)
    module.set_state(runner.module.get_state())
    return module.eval()


# -- DDP ---------------------------------------------------------------------------------------------------

def test_two_ddp_learners_train_whole_sequences_like_the_local_learner(ray_cluster) -> None:
    """Each rank trains its share of each minibatch's sequences; gradients weighted by trained steps."""
    from test_ray_learners import NOT_ROW_MEANS, update_both

    from rlrun.core.columns import COMPONENT_RL_MODULE

    config = recurrent_config().training(minibatch_size=48, num_epochs=2)
    runner = EnvRunner(config.env_runner_spec())
    runner.sample()
    batch = runner.sample()  # mid-episode starts, episode ends and autoreset rows inside
    env = gym.make("StatelessCartPole-v1")
    local = config.build_learner(env=env)
    local.build()
    initial = local.get_state()
    group = config.copy().learners(num_learners=2).build_learner_group(env=env)
    try:
        group.set_state(initial)
        for update in range(2):
            local_result, ddp_results, local_weights = update_both(local, group, batch, update)
            ddp_result = ddp_results[0][DEFAULT_MODULE_ID]
            for key, value in local_result.items():
                if key not in NOT_ROW_MEANS:
                    assert ddp_result[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (update, key)
            assert ddp_result["num_module_steps_trained"] == 2 * int(batch[Columns.LOSS_MASK].sum())
    finally:
        group.stop()
    moved = max(np.abs(local_weights[k] - initial[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID][k]).max()
                for k in local_weights)
    assert moved > 1e-3, "the updates did not change the weights; the comparison would prove nothing"


def test_rlrun_eval_films_a_recurrent_run_and_rlrun_load_acts_with_it(tmp_path: Path) -> None:
    """The CLI path end to end: a recurrent run's checkpoint evaluates and films (the state carried by the
    evaluation runner and by the video's own loop), and `rlrun.load` gives a stateful policy."""
    import subprocess
    import sys

    import rlrun

    run = rlrun.train("env=stateless_cartpole", "model.use_gru=true", "model.lstm_cell_size=8",
                      "env_runners.num_envs_per_runner=2", "algo.train_batch_size=64", "algo.minibatch_size=32",
                      "algo.num_epochs=1", "evaluation.episodes=1", "logger.tensorboard=false",
                      stop={"timesteps": None, "iterations": 1}, hydra={"run": {"dir": str(tmp_path / "run")}})
    eval_cli = str(Path(sys.executable).with_name("rlrun-eval"))
    proc = subprocess.run([eval_cli, f"checkpoint={run.run_dir}", "episodes=2", "video=true", "video_format=gif"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    videos = list((run.run_dir / "videos").glob("*.gif"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000, proc.stdout
    policy = rlrun.load(run.run_dir)
    assert policy.modules[DEFAULT_MODULE_ID].is_stateful()
    obs = np.zeros((4, 2), np.float32)
    first = policy.compute_actions(obs)
    assert first.shape == (4,) and policy._memories[DEFAULT_MODULE_ID].state.shape == (4, 16)  # policy's GRU, value's

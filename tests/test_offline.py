"""Offline RL: recording Minari datasets, streaming them in shards, BC and MARWIL (issue 10)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlrun.algorithms.bc import BCConfig
from rlrun.algorithms.marwil import MARWILConfig
from rlrun.api import train as rlrun_train
from rlrun.config.errors import ConfigError
from rlrun.core.columns import DEFAULT_MODULE_ID, Columns
from rlrun.data.offline.dataset import dataset_info, open_dataset
from rlrun.data.offline.reader import ShardReader, episode_rows
from rlrun.data.offline.writer import RecordedEpisode, write_dataset
from rlrun.env import EnvRunner

REPO = Path(__file__).resolve().parents[1]
RLRUN_EVAL = str(Path(sys.executable).with_name("rlrun-eval"))


def controller_episodes(env_id: str, num_episodes: int, seed: int, policy) -> list[RecordedEpisode]:
    """Episodes of `policy(obs, rng) -> action` in `env_id`."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        steps: dict[str, list] = {"obs": [obs], "act": [], "rew": [], "term": [], "trunc": []}
        done = False
        while not done:
            action = policy(obs, rng)
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(("obs", "act", "rew", "term", "trunc"), (obs, action, reward, terminated, truncated)):
                steps[key].append(value)
            done = terminated or truncated
        episodes.append(RecordedEpisode(
            observations=np.asarray(steps["obs"], dtype=np.float32), actions=np.asarray(steps["act"]),
            rewards=np.asarray(steps["rew"], dtype=np.float32), terminations=np.asarray(steps["term"]),
            truncations=np.asarray(steps["trunc"]), action_logp=np.zeros(len(steps["act"]), dtype=np.float32),
        ))
    env.close()
    return episodes


def balance(obs: np.ndarray, rng: np.random.Generator) -> int:
    """A hand-made CartPole controller (push towards where the pole falls): 500 on every episode."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def write(path: Path, episodes: list[RecordedEpisode], env_id: str = "CartPole-v1") -> str:
    env = gym.make(env_id)
    write_dataset(str(path), episodes, env_id=env_id, observation_space=env.observation_space,
                  action_space=env.action_space, algorithm_name="test", rlrun_metadata={"env": env_id})
    return str(path)


@pytest.fixture(scope="module")
def controller_dataset(tmp_path_factory) -> str:
    """20 episodes (10k rows) of the balancing controller."""
    return write(tmp_path_factory.mktemp("data") / "cartpole-controller-v0",
                 controller_episodes("CartPole-v1", 20, 0, balance))


def bc_config(dataset: str, cls=BCConfig, **training) -> BCConfig:
    config = cls().environment("CartPole-v1").offline_data(dataset=dataset).env_runners(num_envs_per_env_runner=2)
    return config.training(**{"lr": 3e-3, "train_batch_size": 128, **training})


# -- reading and writing -----------------------------------------------------------------


def test_episode_rows_hold_returns_to_go_and_bootstrap_only_cut_off_episodes() -> None:
    space = gym.spaces.Discrete(2)
    episode = {"observations": np.arange(4, dtype=np.float32)[:, None], "actions": np.array([0, 1, 0]),
               "rewards": np.array([1.0, 2.0, 4.0]), "terminations": np.array([False, False, False]),
               "truncations": np.array([False, False, True])}
    rows = episode_rows(episode, space, gamma=0.5, bootstrap=True)
    np.testing.assert_allclose(rows[Columns.VALUE_TARGETS], [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4])
    np.testing.assert_allclose(rows[Columns.OBS][:, 0], [0, 1, 2])
    np.testing.assert_allclose(rows[Columns.FINAL_OBS][:, 0], [3, 3, 3])
    np.testing.assert_allclose(rows[Columns.FINAL_DISCOUNT], [0.125, 0.25, 0.5])
    terminated = episode_rows({**episode, "terminations": np.array([False, False, True]),
                               "truncations": np.zeros(3, dtype=bool)}, space, gamma=0.5, bootstrap=True)
    np.testing.assert_allclose(terminated[Columns.FINAL_DISCOUNT], 0.0)


def test_shards_are_disjoint_bounded_and_a_seek_continues_the_same_stream(tmp_path: Path) -> None:
    """Two ranks together read every row once per epoch; a chunk never holds more than memory_rows rows
    (episodes here are shorter than the bound); a reader moved to row k serves what the first served after k."""
    episodes = controller_episodes("CartPole-v1", 9, 3, lambda obs, rng: int(rng.integers(2)))
    info = dataset_info(write(tmp_path / "random-v0", episodes))
    longest = max(len(e) for e in episodes)
    readers = [ShardReader(info, rank=r, world_size=2, memory_rows=2 * longest, seed=1, gamma=0.9) for r in (0, 1)]
    epoch = [reader.next_rows(reader.rows_per_epoch)[Columns.OBS] for reader in readers]
    every_obs = np.concatenate([e.observations[:-1] for e in episodes])
    np.testing.assert_array_equal(np.sort(np.concatenate(epoch), axis=0), np.sort(every_obs, axis=0))
    assert not {r.tobytes() for r in epoch[0]} & {r.tobytes() for r in epoch[1]}
    assert len(readers[0]._loaded[2][Columns.OBS]) <= 2 * longest

    reader = ShardReader(info, rank=0, world_size=2, memory_rows=2 * longest, seed=1, gamma=0.9)
    stream = np.concatenate([reader.next_rows(7)[Columns.OBS] for _ in range(40)])
    moved = ShardReader(info, rank=0, world_size=2, memory_rows=2 * longest, seed=1, gamma=0.9)
    moved.seek(7 * 23)
    np.testing.assert_array_equal(np.concatenate([moved.next_rows(7)[Columns.OBS] for _ in range(17)]),
                                  stream[7 * 23:])


def test_recorded_episodes_are_the_evaluated_ones_with_their_final_observations() -> None:
    """Recording plays the episodes evaluation plays (same seed, same quotas, greedy); each ends on the env's
    final observation and the log-probs are the policy's."""
    config = BCConfig().environment("CartPole-v1").env_runners(num_envs_per_env_runner=3)
    runner = EnvRunner(config.env_runner_spec(), worker_index=1000)
    try:
        evaluated = runner.sample_episodes(7, explore=False)
        recording = runner.sample_episodes(7, explore=False, record=True)
    finally:
        runner.stop()
    recorded = recording["episodes"]
    assert recording["episode_returns"] == evaluated["episode_returns"]
    assert [float(e.rewards.sum()) for e in recorded] == evaluated["episode_returns"]
    assert [len(e) for e in recorded] == evaluated["episode_lens"]
    for episode in recorded:
        assert len(episode.observations) == len(episode) + 1
        assert episode.terminations[-1] or episode.truncations[-1]
        assert not (episode.terminations[:-1] | episode.truncations[:-1]).any()
        assert abs(episode.observations[-1][2]) > 0.2 or abs(episode.observations[-1][0]) > 2.4 or len(episode) == 500
        np.testing.assert_allclose(episode.action_logp, np.log(0.5), atol=0.05)  # an untrained policy


# -- the CLI: record, train, evaluate, resume ------------------------------------------------


def test_record_train_evaluate_and_resume_through_the_cli(run_cli, tmp_path: Path) -> None:
    # The PPO run is only the recording's policy: made in this process (the CLI's run directory without a new
    # interpreter's seconds of imports); recording, BC training, evaluation and resume go through the CLI.
    rlrun_train("algo=ppo", "algo.train_batch_size=256", "algo.minibatch_size=128", "stop.iterations=1",
                "logger.console=plain", f"hydra.run.dir={tmp_path / 'ppo'}")
    record = subprocess.run([RLRUN_EVAL, f"checkpoint={tmp_path / 'ppo'}", "episodes=6", "explore=true",
                             "record=data/cartpole-ppo-v0"], capture_output=True, text=True, cwd=tmp_path)
    assert record.returncode == 0, record.stderr
    assert "6 stochastic episodes" in record.stdout
    dataset = open_dataset(str(tmp_path / "data" / "cartpole-ppo-v0"))
    assert dataset.total_episodes == 6 and dataset.env_spec.id == "CartPole-v1"
    metadata = json.loads(dataset.storage.metadata["rlrun"])
    assert metadata["checkpoint"].startswith(str(tmp_path / "ppo" / "checkpoints")) and metadata["explore"]
    episode = next(dataset.iterate_episodes([0]))
    assert np.isfinite(episode.infos["action_logp"][:-1]).all() and np.isnan(episode.infos["action_logp"][-1])

    again = subprocess.run([RLRUN_EVAL, f"checkpoint={tmp_path / 'ppo'}", "record=data/cartpole-ppo-v0"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and again.stderr.count("\n") == 1

    bc = run_cli("algo=bc", "offline.dataset=data/cartpole-ppo-v0", "algo.train_batch_size=64", "stop.iterations=6",
                 "evaluation.every_iterations=3", "evaluation.episodes=2", "checkpoint.every_iterations=3",
                 run_dir=tmp_path / "bc")
    assert bc.returncode == 0, bc.stderr
    rows = [json.loads(line) for line in (tmp_path / "bc" / "metrics.jsonl").read_text().splitlines()]
    assert [r["num_env_steps_sampled_lifetime"] for r in rows] == [64 * i for i in range(1, 7)]
    assert [i for i, r in enumerate(rows, 1) if "evaluation/episode_return_mean" in r] == [3, 6]
    assert rows[-1]["learners/default_policy/dataset_rows_trained"] == 6 * 64
    assert (tmp_path / "bc" / "checkpoints" / "best").is_dir()
    evaluation = subprocess.run([RLRUN_EVAL, f"checkpoint={tmp_path / 'bc'}", "episodes=2"],
                                capture_output=True, text=True, cwd=tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr

    resumed = run_cli("resume=bc/checkpoints/checkpoint_000003", "stop.iterations=6", run_dir=tmp_path / "bc")
    assert resumed.returncode == 0, resumed.stderr
    again_rows = [json.loads(line) for line in (tmp_path / "bc" / "metrics.jsonl").read_text().splitlines()]
    keys = ("learners/default_policy/policy_loss", "learners/default_policy/dataset_rows_trained")
    assert [[r[k] for k in keys] for r in again_rows] == [[r[k] for k in keys] for r in rows]


def test_the_env_comes_from_the_dataset_unless_the_command_names_one(run_cli, tmp_path: Path, capsys,
                                                                     monkeypatch) -> None:
    episodes = controller_episodes("Acrobot-v1", 2, 0, lambda obs, rng: int(rng.integers(3)))
    write(tmp_path / "data" / "acrobot-random-v0", episodes, env_id="Acrobot-v1")
    # The run is made in this process (rlrun.train is the CLI's run without a new interpreter's imports), from
    # tmp_path as the CLI below: the refusal's exit status and one line are the CLI's own.
    monkeypatch.chdir(tmp_path)
    rlrun_train("algo=bc", "offline.dataset=data/acrobot-random-v0", "stop.iterations=1", "evaluation.episodes=1",
                "logger.console=plain", f"hydra.run.dir={tmp_path / 'run'}")
    assert "bc on Acrobot-v1" in capsys.readouterr().out
    saved = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "id: Acrobot-v1" in saved
    wrong = run_cli("algo=bc", "offline.dataset=data/acrobot-random-v0", "env=cartpole", run_dir=tmp_path / "wrong")
    assert wrong.returncode == 2 and not (tmp_path / "wrong").exists()
    assert "observation space" in wrong.stderr and "CartPole-v1" in wrong.stderr


@pytest.mark.parametrize(("name", "expected"), [
    ("missing", "no Minari dataset at data/missing/data"),
    ("corrupt", "is not a readable Minari dataset"),
])
def test_a_missing_or_corrupt_dataset_is_one_line_and_leaves_nothing(run_cli, tmp_path: Path, name, expected):
    if name == "corrupt":
        (tmp_path / "data" / "corrupt" / "data").mkdir(parents=True)
        (tmp_path / "data" / "corrupt" / "data" / "metadata.json").write_text("{not json")
    proc = run_cli("algo=bc", f"offline.dataset=data/{name}")
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("changes", "expected"), [
    ({"dataset": None}, "set offline.dataset="),
    ({"num_env_runners": 2}, "env_runners.num=0"),
    ({"num_learners": 21}, "learners.num must be <= the dataset's 20 episodes"),
    ({"dataset_memory_rows": 10}, "offline.memory_rows must be >= algo.train_batch_size (128)"),
])
def test_offline_configs_are_checked(controller_dataset: str, changes, expected) -> None:
    config = bc_config(controller_dataset)
    for key, value in changes.items():
        setattr(config, key, value)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config.validate()


# -- the algorithms --------------------------------------------------------------------------


def test_bc_clones_the_controller(controller_dataset: str) -> None:
    """100 updates of 128 rows at lr 1e-2 (500 from the 80th on seed 0): the greedy clone balances the pole."""
    algo = bc_config(controller_dataset, lr=1e-2).build_algo()
    try:
        for _ in range(100):
            algo.train()
        returns = algo.evaluate(10)["evaluation"]["episode_return_mean"]
    finally:
        algo.stop()
    assert returns >= 475, returns


def test_marwil_with_beta_zero_is_bc(controller_dataset: str) -> None:
    weights = []
    for cls, training in ((BCConfig, {}), (MARWILConfig, {"beta": 0.0})):
        algo = bc_config(controller_dataset, cls, minibatch_size=32, **training).build_algo()
        try:
            for _ in range(3):
                algo.train()
            weights.append(algo.learner_group.get_weights()[DEFAULT_MODULE_ID])
        finally:
            algo.stop()
    for name, value in weights[0].items():
        np.testing.assert_array_equal(weights[1][name], value, err_msg=name)


def test_marwil_weighs_rows_by_advantage_and_tracks_the_squared_norm(controller_dataset: str) -> None:
    algo = bc_config(controller_dataset, MARWILConfig, beta=1.0,
                     moving_average_sqd_adv_norm_update_rate=0.5).build_algo()
    try:
        results = [algo.train()["learners"][DEFAULT_MODULE_ID] for _ in range(3)]
    finally:
        algo.stop()
    assert all(np.isfinite(r["vf_loss"]) and r["mean_advantage_weight"] > 0 for r in results)
    # With rate 0.5 the norm moves halfway to each minibatch's mean squared advantage: far from its start of 100.
    assert results[-1]["moving_avg_sqd_adv_norm"] != pytest.approx(100.0, rel=0.1)


@pytest.mark.ray
def test_ddp_learners_read_disjoint_shards_and_step_like_one_learner_on_their_union(
    ray_cluster, controller_dataset: str, tmp_path: Path
) -> None:
    """2 DDP learners each read their own shard; one update (one minibatch) equals a local learner's update on
    the rows of both shards together."""
    config = bc_config(controller_dataset, minibatch_size=None, train_batch_size=96).learners(num_learners=2)
    algo = config.build_algo()
    try:
        start = algo.learner_group.save_to_path(tmp_path / "start")
        algo.train()
        remote = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
    finally:
        algo.stop()
    info = dataset_info(controller_dataset)
    shards = [ShardReader(info, rank=r, world_size=2, memory_rows=config.dataset_memory_rows, seed=0,
                          gamma=config.gamma).next_rows(48) for r in (0, 1)]
    union = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
    local = config.copy().learners(num_learners=0).build_learner(env=gym.make("CartPole-v1"))
    local.build()
    local.restore_from_path(start)
    local.update(batch=union)
    for name, value in local.get_state("rl_module")["rl_module"][DEFAULT_MODULE_ID].items():
        np.testing.assert_allclose(remote[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# -- the presets (make test-all) -------------------------------------------------------------


@pytest.fixture(scope="module")
def preset_data(tmp_path_factory) -> Path:
    """The presets' datasets, made as a user makes them: scripts/make_offline_datasets.py (a PPO run of ours)."""
    workdir = tmp_path_factory.mktemp("offline")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_offline_datasets.py"), "--out", "data"],
                   cwd=workdir, check=True, capture_output=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return workdir


def final_eval(run_cli, workdir: Path, name: str, *args: str) -> float:
    proc = run_cli(*args, run_dir=workdir / name, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return json.loads((workdir / name / "metrics.jsonl").read_text().splitlines()[-1])["evaluation/episode_return_mean"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_bc_preset_clones_the_ppo_expert(preset_data: Path, seed: int) -> None:
    """The issue's bar: greedy evaluation >= 475 from 100 expert episodes (RLlib's BC example: 350)."""
    assert final_eval(_cli_in(preset_data), preset_data, f"bc{seed}", "experiment=cartpole_bc", f"seed={seed}") >= 475


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_marwil_preset_beats_bc_on_mixed_data(preset_data: Path, seed: int) -> None:
    """The issue's bar: >= 400 on the half-random dataset (RLlib's MARWIL example: 250), and above BC
    (`algo.beta=0`, the same run otherwise) on the same data and budget."""
    cli = _cli_in(preset_data)
    marwil = final_eval(cli, preset_data, f"marwil{seed}", "experiment=cartpole_marwil", f"seed={seed}")
    bc = final_eval(cli, preset_data, f"marwil_bc{seed}", "experiment=cartpole_marwil", "algo.beta=0",
                    f"seed={seed}")
    assert marwil >= 400 and marwil > bc, (marwil, bc)


def _cli_in(workdir: Path):
    """`rlrun` run in `workdir` (where the presets' relative `data/...` paths point)."""
    rlrun = str(Path(sys.executable).with_name("rlrun"))

    def run(*args: str, run_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = [rlrun, *args, f"hydra.run.dir={run_dir}", "logger.console=plain", "logger.tensorboard=false"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)

    return run

"""Structured observation spaces: packing into one uint8 row, the combined encoder, and runs through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrun.algorithms.algorithm import load_module_weights
from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import Columns
from rlrun.core.packed_space import PackedSpace, pack_space
from rlrun.core.rl_module.catalog import Catalog, ModelError
from rlrun.env import EnvRunner

NESTED = gym.spaces.Dict({
    "image": gym.spaces.Box(0, 255, (5, 5, 3), np.uint8),
    "goal": gym.spaces.Dict({"cell": gym.spaces.Discrete(6, start=-2),
                             "where": gym.spaces.Box(-1, 1, (2,), np.float64)}),
    "parts": gym.spaces.Tuple([gym.spaces.MultiDiscrete([3, 4]), gym.spaces.MultiBinary(5)]),
    "action_mask": gym.spaces.Box(0, 1, (4,), np.int8),
})


def _sampled(space: gym.Space, n: int, seed: int = 0) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(n)]


def test_pack_unpack_round_trips_nested_structures_with_each_dtype():
    packed = PackedSpace(NESTED)
    observations = _sampled(NESTED, 4)
    rows = torch.from_numpy(np.stack([packed.pack(obs) for obs in observations]))
    assert rows.dtype == torch.uint8 and rows.shape == (4, packed.shape[0])
    unpacked = packed.unpack(rows)

    assert unpacked["image"].dtype == torch.uint8 and unpacked["image"].shape == (4, 5, 5, 3)
    assert unpacked["goal"]["where"].dtype == torch.float64
    assert unpacked["parts"][1].dtype == torch.int8  # MultiBinary's own dtype
    for i, obs in enumerate(observations):
        np.testing.assert_array_equal(unpacked["image"][i].numpy(), obs["image"])
        assert unpacked["goal"]["cell"][i].item() == obs["goal"]["cell"]  # negative values (start=-2) survive
        np.testing.assert_array_equal(unpacked["goal"]["where"][i].numpy(), obs["goal"]["where"])
        np.testing.assert_array_equal(unpacked["parts"][0][i].numpy(), obs["parts"][0])
        np.testing.assert_array_equal(unpacked["parts"][1][i].numpy(), obs["parts"][1])
    # a batch of structured observations packs at once, to the same rows; leading dims are kept on unpack
    batch = {"image": np.stack([o["image"] for o in observations]),
             "goal": {"cell": np.array([o["goal"]["cell"] for o in observations]),
                      "where": np.stack([o["goal"]["where"] for o in observations])},
             "parts": tuple(np.stack([o["parts"][i] for o in observations]) for i in range(2)),
             "action_mask": np.stack([o["action_mask"] for o in observations])}
    np.testing.assert_array_equal(packed.pack(batch), rows.numpy())
    assert packed.unpack(rows.reshape(2, 2, -1))["parts"][0].shape == (2, 2, 2)


def test_action_mask_reads_the_top_level_entry_as_bool_and_is_none_without_it():
    packed = PackedSpace(NESTED)
    observations = _sampled(NESTED, 3, seed=1)
    rows = torch.from_numpy(np.stack([packed.pack(obs) for obs in observations]))
    mask = packed.action_mask(rows)
    assert mask.dtype == torch.bool and mask.shape == (3, 4)
    np.testing.assert_array_equal(mask.numpy(), np.stack([o["action_mask"] for o in observations]) != 0)
    assert [leaf.name for leaf in packed.feature_leaves] == ["goal.cell", "goal.where", "image", "parts.0", "parts.1"]

    without = PackedSpace(gym.spaces.Dict({"pos": gym.spaces.Discrete(3)}))
    assert without.action_mask(torch.from_numpy(without.pack({"pos": 2})[None])) is None


def test_unusable_parts_are_left_out_with_one_line_and_a_box_is_not_packed(caplog):
    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (3, 3, 3), np.uint8), "mission": gym.spaces.Text(20)})
    with caplog.at_level("WARNING"):
        first, second = PackedSpace(space), PackedSpace(space)
    assert first == second and list(first.original.spaces) == ["image"]
    assert [r.getMessage() for r in caplog.records if "mission" in r.getMessage()] == [
        "observation part 'mission' (Text) is left out: the models take Box, Discrete, MultiDiscrete and MultiBinary "
        "parts"]
    with pytest.raises(ModelError, match="no part the models can use"):
        PackedSpace(gym.spaces.Dict({"mission": gym.spaces.Text(20)}))
    box = gym.spaces.Box(-1, 1, (3,))
    assert pack_space(box) is box
    assert isinstance(pack_space(gym.spaces.Discrete(4)), PackedSpace)


def test_the_catalog_encodes_each_part_one_hot_flat_or_through_a_cnn():
    space = PackedSpace(gym.spaces.Dict({
        "cell": gym.spaces.Discrete(3, start=1),
        "dice": gym.spaces.MultiDiscrete([2, 3]),
        "flags": gym.spaces.MultiBinary(2),
        "image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
        "speed": gym.spaces.Box(-5, 5, (2,), np.float32),
        "action_mask": gym.spaces.MultiBinary(4),
    }))
    catalog = Catalog(space, {"cnn": "small", "hiddens": [8]})
    catalog.check()
    encoder = catalog.build_encoder()
    image = np.full((7, 7, 3), 255, np.uint8)
    obs = {"cell": 3, "dice": np.array([1, 0]), "flags": np.array([1, 0], np.int8), "image": image,
           "speed": np.array([0.5, -2.0], np.float32), "action_mask": np.ones(4, np.int8)}
    features = encoder(torch.from_numpy(space.pack(obs)[None]))
    cnn = Catalog(space.original["image"], {"cnn": "small"}).build_encoder()
    assert encoder.out_dim == features.shape[1] == 3 + 5 + 2 + cnn.out_dim + 2  # no action_mask features
    one_hots = features[0, :10].tolist()
    assert one_hots == [0, 0, 1] + [0, 1, 1, 0, 0] + [1, 0]  # cell 3 of {1,2,3}; dice (1, 0); flags as floats
    assert features[0, -2:].tolist() == [0.5, -2.0]
    image_part = encoder.parts[3]  # the catalog's own CNN for the image alone, fed uint8 pixels scaled by 1/255
    cnn.load_state_dict(image_part.state_dict())
    expected = cnn(torch.from_numpy(image[None]))
    torch.testing.assert_close(features[:, 10:-2], expected)
    assert torch.equal(image_part(torch.ones(1, 7, 7, 3)), expected)  # floats of 1.0 = uint8 255 scaled

    with pytest.raises(ModelError, match="observation part 'image'.*conv_filters does not fit 7x7"):
        Catalog(space, {"conv_filters": [[16, 8, 4]]}).check()
    with pytest.raises(ModelError, match="no part to learn from besides its action_mask"):
        Catalog(PackedSpace(gym.spaces.Dict({"action_mask": gym.spaces.MultiBinary(3)})), {}).check()


def test_mean_std_filter_normalises_only_the_float_parts():
    """MeanStdFilter on a Dict: the float part ends near mean 0, std 1; pixels and categories are the env's own."""
    runner = EnvRunner(PPOConfig().environment("structured_envs:CueEnv")
                       .env_runners(num_envs_per_env_runner=4, observation_filter="MeanStdFilter")
                       .debugging(seed=0).env_runner_spec())
    space = runner.observation_space
    assert isinstance(space, PackedSpace) and "note" not in space.original.spaces
    runner.sample(num_timesteps=200)  # statistics first, then a batch filtered with them
    batch = runner.sample(num_timesteps=200, keep_raw=True)
    assert batch[Columns.OBS].dtype == np.uint8
    seen, raw = space.unpack(torch.from_numpy(batch[Columns.OBS])), space.unpack(torch.from_numpy(batch["raw_obs"]))
    assert torch.equal(seen["pixels"], raw["pixels"]) and seen["pixels"].dtype == torch.uint8
    assert torch.equal(seen["cue"], raw["cue"]) and set(seen["cue"].unique().tolist()) <= {1, 2, 3}
    assert torch.equal(seen["flags"], raw["flags"])
    assert raw["speed"].mean() > 30  # the env's own values, around 50
    assert abs(seen["speed"].mean().item()) < 0.3 and 0.7 < seen["speed"].std().item() < 1.3
    assert runner.get_normalization()["obs"]["mean"].shape == (2,)  # statistics of the float part alone


def test_a_recorded_dataset_stores_the_structure_and_reads_back_packed(tmp_path):
    """rlrun-eval record=: a Dict env's dataset is an ordinary Minari dataset of its Dict space (left-out parts
    excluded), and the offline reader serves the very packed rows the env runner saw."""
    from rlrun.data.offline.dataset import dataset_info, open_dataset
    from rlrun.data.offline.reader import ShardReader
    from rlrun.data.offline.writer import write_dataset

    runner = EnvRunner(PPOConfig().environment("structured_envs:CueEnv").env_runners(num_envs_per_env_runner=2)
                       .debugging(seed=0).env_runner_spec())
    episodes = runner.sample_episodes(3, record=True)["episodes"]
    write_dataset(str(tmp_path / "cue"), episodes, env_id="structured_envs:CueEnv",
                  observation_space=runner.observation_space, action_space=runner.action_space,
                  algorithm_name="PPO", rlrun_metadata={})
    stored = open_dataset(str(tmp_path / "cue")).observation_space
    assert stored == runner.observation_space.original and isinstance(stored["cue"], gym.spaces.Discrete)
    assert stored["pixels"].dtype == np.uint8
    info = dataset_info(str(tmp_path / "cue"))
    assert info.observation_space == runner.observation_space  # the BC/MARWIL module is built for what the env sees
    rows = ShardReader(info, rank=0, world_size=1, memory_rows=1000, seed=0, gamma=0.99).next_rows(info.total_steps)
    recorded = np.concatenate([e.observations[:-1] for e in episodes])
    assert rows[Columns.OBS].dtype == np.uint8
    assert sorted(map(bytes, rows[Columns.OBS])) == sorted(map(bytes, recorded))


@pytest.mark.ray
def test_a_dict_env_on_a_ray_env_runner_fills_a_replay_buffer_and_resumes(ray_cluster, tmp_path):
    """DQN on a Dict observation with a Ray env runner: the space pickles to the actor, packed uint8 rows reach
    the replay buffer, the float part is filtered remotely, and a checkpoint restores weights and statistics."""
    from rlrun.algorithms.dqn import DQNConfig

    config = (DQNConfig().environment("structured_envs:CueEnv")
              .env_runners(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=16,
                           observation_filter="MeanStdFilter")
              .training(train_batch_size=16, num_steps_sampled_before_learning_starts=32,
                        replay_buffer={"capacity": 500})
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        assert algo.env_runner_group.is_remote
        for _ in range(3):
            result = algo.train()
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
        space = algo.env_runner_group.env.observation_space
        storage = algo.replay_buffer.get_state()["storage"]
        assert storage[Columns.OBS].dtype == np.uint8 and storage[Columns.OBS].shape[1:] == (2, space.shape[0])
        stored = space.unpack(torch.from_numpy(storage[Columns.OBS][:32].reshape(-1, space.shape[0])))
        assert set(stored["cue"].unique().tolist()) <= {1, 2, 3}
        assert abs(stored["speed"].float().mean().item()) < 5  # filtered on the actor, not the env's ~50
        checkpoint = algo.save_to_path(tmp_path / "checkpoint")
        saved = algo.learner_group.get_weights()["default_policy"]
        algo.train()
        algo.restore_from_path(checkpoint)  # back to the saved weights, statistics and buffer
        for name, value in algo.learner_group.get_weights()["default_policy"].items():
            np.testing.assert_array_equal(value, saved[name], err_msg=name)
        assert np.isfinite(algo.train()["learners"]["default_policy"]["total_loss"])
    finally:
        algo.stop()


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_frozenlake_s_discrete_observation_trains_and_films_through_the_cli(run_cli, tmp_path, algo):
    """`rlrun env.id=FrozenLake-v1 algo=...` (a Discrete(16) observation, one-hot) trains, and rlrun-eval films
    its policy (toy-text envs take int actions)."""
    size = ["algo.train_batch_size=64", "algo.minibatch_size=32"] if algo == "ppo" else [
        "algo.num_steps_sampled_before_learning_starts=32"]
    proc = run_cli("env.id=FrozenLake-v1", f"algo={algo}", "stop.iterations=2", "evaluation.episodes=2", *size)
    assert proc.returncode == 0, proc.stderr
    assert "done (iterations >= 2)" in proc.stdout
    weights = load_module_weights(tmp_path / "run" / "checkpoints" / "final")["default_policy"]
    inputs = {np.shape(v)[1] for k, v in weights.items() if k.endswith("weight") and np.ndim(v) == 2}
    assert 16 in inputs and 8 not in inputs, "the first layer sees a one-hot of the 16 cells, not the row's bytes"
    if algo == "dqn":
        film = subprocess.run([str(Path(sys.executable).with_name("rlrun-eval")), f"checkpoint={tmp_path / 'run'}",
                               "episodes=1", "video=true", "video_format=gif"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert film.returncode == 0, film.stderr
        assert list((tmp_path / "run" / "videos").glob("*.gif"))



def test_each_pettingzoo_agent_s_dict_observation_is_packed_and_learned_from():
    """A multi-agent env whose agents see a Dict: each agent's observation is packed on its own, the shared
    module is built for that PackedSpace, and a few PPO updates learn to follow each agent's one-hot cue."""
    from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner

    config = (PPOConfig().environment("structured_envs:CueAgentsEnv").env_runners(num_envs_per_env_runner=4)
              .training(lr=0.01, train_batch_size=96, minibatch_size=48, num_epochs=4).debugging(seed=0))
    runner = MultiAgentEnvRunner(config.env_runner_spec())
    space = runner.mapping.observation_spaces()["default_policy"]
    assert isinstance(space, PackedSpace) and set(space.original.spaces) == {"cue", "where"}
    batch = runner.sample(num_timesteps=24)["default_policy"]
    assert batch[Columns.OBS].dtype == np.uint8 and batch[Columns.OBS].shape[-1] == space.shape[0]
    assert set(space.unpack(torch.from_numpy(batch[Columns.OBS]))["cue"].unique().tolist()) <= {0, 1}
    runner.stop()

    algo = config.build_algo()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(12)]
    finally:
        algo.stop()
    assert returns[-1] >= 10.5, returns  # 12 when both agents follow their cues for all 6 steps; 6 at random

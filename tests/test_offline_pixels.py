"""Recorded pixel datasets keep their uint8 observations, exactly, from the env runner to the learners' rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlrun.algorithms.bc import BCConfig
from rlrun.core.columns import Columns
from rlrun.data.offline.dataset import dataset_info, open_dataset
from rlrun.data.offline.reader import ShardReader
from rlrun.data.offline.writer import RecordedEpisode, write_dataset
from rlrun.env import EnvRunner

ENV = "pixel_envs:PixelEnv"


def test_a_uint8_recording_reads_back_as_the_same_uint8_rows(tmp_path: Path) -> None:
    config = BCConfig().environment(ENV).env_runners(num_envs_per_env_runner=2)
    runner = EnvRunner(config.env_runner_spec(), worker_index=1000)
    try:
        episodes = runner.sample_episodes(6, explore=True, record=True)["episodes"]
        space, action_space = runner.observation_space, runner.action_space
    finally:
        runner.stop()
    assert all(e.observations.dtype == np.uint8 for e in episodes)
    # An episode handed over as float32 (exact for uint8 values) is written in the space's dtype too.
    floats = RecordedEpisode(**{**vars(episodes[0]), "observations": episodes[0].observations.astype(np.float32)})
    path = write_dataset(str(tmp_path / "pixels-v0"), [*episodes, floats], env_id=ENV, observation_space=space,
                         action_space=action_space, algorithm_name="test", rlrun_metadata={})
    stored = list(open_dataset(str(path)).storage.get_episodes(range(len(episodes) + 1)))
    for episode, recorded in zip(stored, [*episodes, episodes[0]]):
        assert episode["observations"].dtype == np.uint8  # not float32, and not JPEG-decoded approximations
        np.testing.assert_array_equal(episode["observations"], recorded.observations)

    info = dataset_info(str(path))
    reader = ShardReader(info, rank=0, world_size=1, memory_rows=10_000, seed=0, gamma=0.9, bootstrap=True)
    rows = reader.next_rows(reader.rows_per_epoch)
    assert rows[Columns.OBS].dtype == np.uint8 and rows[Columns.FINAL_OBS].dtype == np.uint8
    every_obs = np.concatenate([e.observations[:-1] for e in [*episodes, episodes[0]]])
    np.testing.assert_array_equal(np.sort(rows[Columns.OBS].reshape(len(every_obs), -1), axis=0),
                                  np.sort(every_obs.reshape(len(every_obs), -1), axis=0))

    # BC learns from those rows: the model makes them float on its device.
    algo = BCConfig().environment(ENV).offline_data(dataset=str(path)).training(train_batch_size=16).build_algo()
    try:
        assert np.isfinite(algo.train()["learners"]["default_policy"]["total_loss"])
    finally:
        algo.stop()

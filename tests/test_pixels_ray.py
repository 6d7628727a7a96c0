"""uint8 pixels through Ray's object store (issue 25): an env runner actor's fragments reach the driver as uint8,
and a DQN run sampling with it stores uint8 frames and trains on them. On the session's shared Ray instance; one
test, so that one actor start serves both checks."""

from __future__ import annotations

import numpy as np
import pytest

from rlrun.algorithms.dqn import DQNConfig
from rlrun.core.columns import Columns

pytestmark = pytest.mark.ray


def test_ray_env_runner_fragments_and_a_dqn_replay_buffer_stay_uint8(ray_cluster) -> None:
    config = (DQNConfig().environment("pixel_envs:PixelEnv", env_config={"size": 8})
              .env_runners(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=16)
              .rl_module(model_config={"cnn": "small"})
              .training(train_batch_size=16, num_steps_sampled_before_learning_starts=32,
                        replay_buffer={"capacity": 1000})
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        assert algo.env_runner_group.is_remote
        batch, env_steps = algo.env_runner_group.sample()  # what the actor's fragment became at the driver
        assert env_steps > 0
        for column in (Columns.OBS, Columns.BOOTSTRAP_OBS):
            assert batch[column].dtype == np.uint8, column
            assert batch[column].shape[-2:] == (8, 8), batch[column].shape
        assert batch[Columns.OBS].any()

        for _ in range(4):
            result = algo.train()
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
        storage = algo.replay_buffer.get_state()["storage"]
        assert storage[Columns.OBS].dtype == np.uint8 and storage[Columns.OBS].shape[1:] == (2, 8, 8)
        assert storage[Columns.OBS].any()
        sample = algo.replay_buffer.sample(16, n_step=1, gamma=0.99)
        assert sample[Columns.OBS].dtype == np.uint8 and sample[Columns.NEXT_OBS].dtype == np.uint8
    finally:
        algo.stop()

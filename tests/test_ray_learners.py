"""DDP Learner actors on a real local Ray cluster with a real gloo process group."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import ray

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core.columns import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID, Columns
from rlrun.env import EnvRunner

pytestmark = pytest.mark.ray


def one_minibatch_config() -> PPOConfig:
    """Each epoch is one minibatch of the whole batch: DDP's averaged shard gradients equal the full-batch one."""
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=8, rollout_fragment_length=32)
        .training(train_batch_size=256, minibatch_size=256, num_epochs=3, lr=3e-3, use_kl_loss=True, kl_coeff=0.3)
        .debugging(seed=3)
    )


@pytest.fixture(scope="module")
def fixed_batch() -> dict[str, np.ndarray]:
    runner = EnvRunner(config=one_minibatch_config())
    batch = runner.sample()
    runner.stop()
    # Every row trains, so 256 rows split into two equal shards of 128.
    batch[Columns.LOSS_MASK][:] = True
    return batch


def env() -> gym.Env:
    return gym.make("CartPole-v1")


def assert_weights_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_ddp_update_matches_local_learner(ray_cluster, fixed_batch) -> None:
    config = one_minibatch_config()
    local = config.build_learner(env=env())
    local.build()
    initial = local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE]
    group = config.copy().learners(num_learners=2).build_learner_group(env=env())
    try:
        group.set_weights(initial)
        local_result = local.update(batch=fixed_batch)[DEFAULT_MODULE_ID]
        ddp_results = group.update(batch=fixed_batch)
        ddp_weights = group.get_weights()[DEFAULT_MODULE_ID]
        rank1_weights = ray.get(group._learner._actors[1].get_state.remote(COMPONENT_RL_MODULE))
    finally:
        group.stop()
    local_weights = local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]
    moved = max(np.abs(local_weights[k] - initial[DEFAULT_MODULE_ID][k]).max() for k in local_weights)
    assert moved > 1e-3, "the update did not change the weights; the comparison would prove nothing"
    assert_weights_close(ddp_weights, local_weights)
    assert_weights_close(rank1_weights[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID], local_weights)
    # Metrics are all-reduced: both ranks report the same numbers, equal to the local learner's.
    assert len(ddp_results) == 2 and ddp_results[0] == ddp_results[1]
    for key in ("total_loss", "mean_kl_loss", "curr_kl_coeff"):
        assert ddp_results[0][DEFAULT_MODULE_ID][key] == pytest.approx(local_result[key], rel=1e-4, abs=1e-6), key


def test_async_updates_apply_in_order_and_report_when_finished(ray_cluster, fixed_batch) -> None:
    config = one_minibatch_config()
    local = config.build_learner(env=env())
    local.build()
    group = config.copy().learners(num_learners=2).build_learner_group(env=env())
    try:
        group.set_state(local.get_state())
        finished = []
        for _ in range(3):
            returned = group.update(batch=fixed_batch, async_update=True)
            assert isinstance(returned, list)
            finished += returned
        weights = group.get_weights()[DEFAULT_MODULE_ID]  # runs after the queued updates on rank 0
        # The three updates have finished, so the next async call reports them.
        finished += group.update(batch=fixed_batch, async_update=True)
    finally:
        group.stop()
    for _ in range(3):
        local.update(batch=fixed_batch)
    assert_weights_close(weights, local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID])
    assert len(finished) >= 3 and all(DEFAULT_MODULE_ID in r for r in finished)


def test_set_state_reaches_every_learner_and_checkpoints_round_trip(ray_cluster, fixed_batch, tmp_path) -> None:
    config = one_minibatch_config()
    group = config.copy().learners(num_learners=2).build_learner_group(env=env())
    try:
        group.update(batch=fixed_batch)
        group.save_to_path(tmp_path / "learners")
        trained = group.get_state()
        zeros = {k: np.zeros_like(v) for k, v in trained[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID].items()}
        group.set_weights({DEFAULT_MODULE_ID: zeros})
        for actor in group._learner._actors:
            state = ray.get(actor.get_state.remote(COMPONENT_RL_MODULE))[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]
            assert all(not v.any() for v in state.values())
        group.restore_from_path(tmp_path / "learners")
        for actor in group._learner._actors:
            state = ray.get(actor.get_state.remote(COMPONENT_RL_MODULE))[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]
            assert_weights_close(state, trained[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID])
    finally:
        group.stop()
    # A local learner reads the checkpoint the DDP group wrote.
    local = config.build_learner(env=env())
    local.build()
    local.restore_from_path(tmp_path / "learners")
    assert_weights_close(local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID],
                         trained[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID])


def test_uneven_batch_runs_the_same_minibatch_count_on_every_rank(ray_cluster, fixed_batch) -> None:
    """Real loss masks give an odd row count and several minibatches: ranks must still agree (no deadlock)."""
    config = one_minibatch_config().training(minibatch_size=64, num_epochs=2)
    batch = dict(fixed_batch)
    mask = np.ones_like(batch[Columns.LOSS_MASK])
    mask[0, :3] = False  # 253 training rows
    batch[Columns.LOSS_MASK] = mask
    group = config.learners(num_learners=2).build_learner_group(env=env())
    try:
        results = ray.get([a.update.remote(batch, None) for a in group._learner._actors], timeout=120)
    finally:
        group.stop()
    assert results[0] == results[1]
    assert results[0][DEFAULT_MODULE_ID]["num_module_steps_trained"] == 253

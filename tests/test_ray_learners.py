"""DDP Learner actors on a real local Ray cluster with a real gloo process group."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import ray
from conftest import connect_shared_ray

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
    runner = EnvRunner(one_minibatch_config().env_runner_spec())
    batch = runner.sample()
    runner.stop()
    # Every row trains, so 256 rows split into two equal shards of 128.
    batch[Columns.LOSS_MASK][:] = True
    return batch


def env() -> gym.Env:
    return gym.make("CartPole-v1")


@pytest.fixture(scope="module")
def ppo_group(_ray_worker_path):
    """Two DDP learner actors of `one_minibatch_config()`, started once for the tests below the parametrized one.

    Each test first sets the whole learner state it starts from (weights, optimizer moments, learner variables)
    or only compares the group with itself, so what an earlier test did to it does not matter.
    """
    connect_shared_ray()  # as `ray_cluster`, which every test using this also requests
    group = one_minibatch_config().learners(num_learners=2).build_learner_group(env=env())
    yield group
    group.stop()


def assert_weights_close(a: dict, b: dict, where: str = "") -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=f"{where} {name}")


def update_both(local, group, batch: dict, update: int) -> tuple[dict, list[dict], dict]:
    """One update of the local learner and of the DDP group on `batch`, after which every rank's weights must equal
    the local learner's; returns the local result, the ranks' results and the local weights."""
    local_result = local.update(batch=batch)[DEFAULT_MODULE_ID]
    ddp_results = group.update(batch=batch)
    local_weights = local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]
    for rank, actor in enumerate(group._learner._actors):
        state = ray.get(actor.get_state.remote(COMPONENT_RL_MODULE))[COMPONENT_RL_MODULE]
        assert_weights_close(state[DEFAULT_MODULE_ID], local_weights, f"update {update}, rank {rank}")
    return local_result, ddp_results, local_weights


LEARNERS = {
    "ppo": None,
    "bc": "user_learners:BCLearner",  # the policy head alone: the value head gets no gradient
    "value_head_only": "user_learners:ValueOnlyLearner",
    "loss_changes_between_updates": "user_learners:AlternatingLearner",
    "two_optimizers": "user_learners:TwoOptimizerLearner",
}


# A ratio of variances is not a mean over rows: DDP reports the average of the ranks' values.
NOT_ROW_MEANS = {"vf_explained_var"}


@pytest.mark.parametrize("learner", LEARNERS)
def test_ddp_updates_equal_the_local_learner(ray_cluster, fixed_batch, learner) -> None:
    """3 updates x 2 epochs x several minibatches with real loss masks (an odd row count): equal to float tolerance.

    Both ranks draw the local learner's minibatches and average their gradients weighted by rows, so each
    optimizer step is the local learner's step, for losses that skip parameters or change between updates.
    """
    config = one_minibatch_config().training(minibatch_size=48, num_epochs=2, learner_class=LEARNERS[learner])
    batch = dict(fixed_batch)
    mask = np.ones_like(batch[Columns.LOSS_MASK])
    mask[0, :3] = False  # 253 training rows: 6 minibatches of 42 or 43, split 21/22 over the ranks
    batch[Columns.LOSS_MASK] = mask
    local = config.build_learner(env=env())
    local.build()
    initial = local.get_state()
    group = config.copy().learners(num_learners=2).build_learner_group(env=env())
    try:
        group.set_state(initial)
        for update in range(3):
            local_result, ddp_results, local_weights = update_both(local, group, batch, update)
            # Metrics are all-reduced: both ranks report the same numbers, equal to the local learner's.
            assert len(ddp_results) == 2 and ddp_results[0] == ddp_results[1]
            ddp_result = ddp_results[0][DEFAULT_MODULE_ID]
            assert ddp_result.keys() == local_result.keys()
            for key, value in local_result.items():
                if key in NOT_ROW_MEANS:
                    continue
                assert ddp_result[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (update, key)
            assert ddp_result["num_module_steps_trained"] == 2 * 253  # every row, once per epoch
    finally:
        group.stop()
    moved = max(np.abs(local_weights[k] - initial[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID][k]).max()
                for k in local_weights)
    assert moved > 1e-3, "the updates did not change the weights; the comparison would prove nothing"


def test_async_updates_apply_in_order_and_report_when_finished(ray_cluster, ppo_group, fixed_batch) -> None:
    config = one_minibatch_config()
    local = config.build_learner(env=env())
    local.build()
    group = ppo_group
    group.set_state(local.get_state())  # every component: the updates below start from the local learner's state
    finished = []
    for _ in range(3):
        returned = group.update(batch=fixed_batch, async_update=True)
        assert isinstance(returned, list)
        finished += returned
    weights = group.get_weights()[DEFAULT_MODULE_ID]  # runs after the queued updates on rank 0
    # Wait until every rank has returned the queued updates: the next async call must report all of them.
    queued = [ref for refs in group._learner._in_flight for ref in refs]
    ray.wait(queued, num_returns=len(queued), timeout=120)
    finished += group.update(batch=fixed_batch, async_update=True)
    for _ in range(3):
        local.update(batch=fixed_batch)
    assert_weights_close(weights, local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID])
    assert len(finished) >= 3 and all(DEFAULT_MODULE_ID in r for r in finished)


def test_set_state_reaches_every_learner_and_checkpoints_round_trip(ray_cluster, ppo_group, fixed_batch,
                                                                     tmp_path) -> None:
    config = one_minibatch_config()
    group = ppo_group
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
    # A local learner reads the checkpoint the DDP group wrote.
    local = config.build_learner(env=env())
    local.build()
    local.restore_from_path(tmp_path / "learners")
    assert_weights_close(local.get_state(COMPONENT_RL_MODULE)[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID],
                         trained[COMPONENT_RL_MODULE][DEFAULT_MODULE_ID])

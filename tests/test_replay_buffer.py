"""Replay buffers against hand-computed references: n-step windows, episode ends, the write head, FIFO."""

from __future__ import annotations

import numpy as np
import pytest

from rlrun.core.columns import Columns
from rlrun.data.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer, SumTree

GAMMA = 0.5


def fragment(obs: list[list[float]], rewards: list[list[float]], term: list[list[int]] | None = None,
             trunc: list[list[int]] | None = None, mask: list[list[int]] | None = None) -> dict[str, np.ndarray]:
    """A time-major [T, B] fragment as the env runner returns it; obs are scalars (1-dim observations)."""
    shape = np.asarray(rewards).shape
    zeros = np.zeros(shape, dtype=bool)
    return {
        Columns.OBS: np.asarray(obs, dtype=np.float32)[..., None],
        Columns.ACTIONS: np.arange(np.prod(shape)).reshape(shape),
        Columns.REWARDS: np.asarray(rewards, dtype=np.float32),
        Columns.TERMINATEDS: zeros if term is None else np.asarray(term, dtype=bool),
        Columns.TRUNCATEDS: zeros if trunc is None else np.asarray(trunc, dtype=bool),
        Columns.LOSS_MASK: ~zeros if mask is None else np.asarray(mask, dtype=bool),
        Columns.BOOTSTRAP_OBS: np.zeros((shape[1], 1), dtype=np.float32),
    }


def all_transitions(buffer: ReplayBuffer, n_step: int) -> dict[float, tuple[float, float, bool, float]]:
    """obs -> (n-step reward, next obs, terminated, n_step) for every sampleable slot (obs values are unique)."""
    indices = np.flatnonzero(buffer.sampleable())
    batch = buffer._transitions(indices, n_step, GAMMA)
    return {float(o): (float(r), float(no), bool(t), float(n)) for o, r, no, t, n in zip(
        batch[Columns.OBS][:, 0], batch[Columns.REWARDS], batch[Columns.NEXT_OBS][:, 0],
        batch[Columns.TERMINATEDS], batch[Columns.N_STEP])}


def one_env_episode_ends() -> dict[str, np.ndarray]:
    """One env: steps 0-1 then termination (final obs 2 in the autoreset row), steps 10-12 then truncation."""
    return fragment(
        obs=[[0], [1], [2], [10], [11], [12], [13], [20], [21]],
        rewards=[[1], [2], [0], [1], [2], [4], [0], [1], [1]],
        term=[[0], [1], [0], [0], [0], [0], [0], [0], [0]],
        trunc=[[0], [0], [0], [0], [0], [1], [0], [0], [0]],
        mask=[[1], [1], [0], [1], [1], [1], [0], [1], [1]],
    )


def test_n_step_windows_stop_at_episode_ends_and_the_write_head() -> None:
    buffer = ReplayBuffer(capacity=100)
    buffer.add(one_env_episode_ends())
    # The autoreset rows (obs 2, 13) never start a transition; neither does the newest row (obs 21).
    assert all_transitions(buffer, n_step=3) == {
        0.0: (1 + GAMMA * 2, 2.0, True, 2.0),  # terminated: the learner drops the bootstrap
        1.0: (2.0, 2.0, True, 1.0),
        10.0: (1 + GAMMA * 2 + GAMMA**2 * 4, 13.0, False, 3.0),  # full window, bootstraps from obs 13
        11.0: (2 + GAMMA * 4, 13.0, False, 2.0),  # truncated: bootstraps from the true final obs 13
        12.0: (4.0, 13.0, False, 1.0),
        20.0: (1.0, 21.0, False, 1.0),  # the window ends at the write head
    }
    assert all_transitions(buffer, n_step=1)[10.0] == (1.0, 11.0, False, 1.0)


def test_streams_continue_across_fragments_per_env() -> None:
    buffer = ReplayBuffer(capacity=100)
    buffer.add(fragment(obs=[[0, 100], [1, 101]], rewards=[[1, 10], [1, 10]]))
    assert set(all_transitions(buffer, 2)) == {0.0, 100.0}  # the newest row waits for its next obs
    buffer.add(fragment(obs=[[2, 102], [3, 103]], rewards=[[1, 10], [1, 10]]))
    transitions = all_transitions(buffer, 2)
    assert transitions[1.0] == (1 + GAMMA, 3.0, False, 2.0)
    assert transitions[101.0] == (10 + GAMMA * 10, 103.0, False, 2.0)
    assert set(transitions) == {0.0, 1.0, 2.0, 100.0, 101.0, 102.0}


def test_fifo_eviction_and_counters() -> None:
    buffer = ReplayBuffer(capacity=8)  # 2 envs: 4 rows
    buffer.add(fragment(obs=[[0, 100], [1, 101], [2, 102]], rewards=[[0, 0]] * 3, mask=[[1, 1], [1, 0], [1, 1]]))
    buffer.add(fragment(obs=[[3, 103], [4, 104]], rewards=[[0, 0]] * 2))
    metrics = buffer.get_metrics()
    assert metrics["num_env_steps_added_lifetime"] == 9
    assert metrics["num_env_steps_evicted_lifetime"] == 2  # row 0 (obs 0, 100) overwritten by obs 4, 104
    assert metrics["num_env_steps_stored"] == 7
    assert set(all_transitions(buffer, 1)) == {1.0, 2.0, 3.0, 102.0, 103.0}
    # The oldest stored step's window runs forward over the ring's wrap to the write head.
    assert all_transitions(buffer, 3)[1.0] == (0.0, 4.0, False, 3.0)
    # A fragment longer than the ring keeps its last rows; its first steps count as evicted.
    buffer.add(fragment(obs=[[v, v + 100] for v in range(5, 11)], rewards=[[0, 0]] * 6))
    assert buffer.get_metrics()["num_env_steps_evicted_lifetime"] == 2 + 7 + 4
    assert set(all_transitions(buffer, 1)) == {7.0, 8.0, 9.0, 107.0, 108.0, 109.0}


def test_uniform_sample_covers_the_sampleable_slots_only() -> None:
    buffer = ReplayBuffer(capacity=100, seed=1)
    buffer.add(one_env_episode_ends())
    batch = buffer.sample(500, n_step=1, gamma=GAMMA)
    assert set(batch[Columns.OBS][:, 0].tolist()) == {0.0, 1.0, 10.0, 11.0, 12.0, 20.0}
    assert (batch[Columns.WEIGHTS] == 1).all()
    assert batch[Columns.INDICES].shape == (500,)


def test_sum_tree_prefix_lookup_and_zero_leaves() -> None:
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 2.0, 0.0, 3.0]))
    assert tree.total == 6.0
    found = tree.find(np.array([0.0, 0.999, 1.0, 2.999, 3.0, 5.999, 6.0]))
    np.testing.assert_array_equal(found, [0, 0, 2, 2, 4, 4, 4])  # never a zero leaf, even at the edges
    tree.set(np.array([4, 4]), np.array([5.0, 1.0]))  # the last value wins
    assert tree.total == 4.0


def test_prioritized_sampling_is_proportional_with_importance_weights() -> None:
    buffer = PrioritizedReplayBuffer(capacity=100, seed=0, alpha=1.0)
    buffer.add(fragment(obs=[[0], [1], [2], [3]], rewards=[[0]] * 4))
    slots = np.flatnonzero(buffer.sampleable())  # obs 0, 1, 2
    buffer.update_priorities(slots, np.array([1.0, 3.0, 0.0]))
    batch = buffer.sample(4000, n_step=1, gamma=GAMMA, beta=1.0)
    obs = batch[Columns.OBS][:, 0]
    # P = p / sum p with p = |td| + 1e-6: 1/4, 3/4 and (almost) never the zero-error slot.
    assert abs((obs == 1).mean() - 0.75) < 0.03 and (obs == 2).sum() <= 1
    # w = (N P)^-beta / max: obs 0 (P = 1/4) gets the largest weight, obs 1 a third of it.
    np.testing.assert_allclose(batch[Columns.WEIGHTS][obs == 1], 1 / 3, rtol=1e-4)
    np.testing.assert_allclose(batch[Columns.WEIGHTS][obs == 0], 1.0, rtol=1e-4)
    # New steps enter with the largest priority so far (3): the previously newest row (obs 3) included.
    buffer.add(fragment(obs=[[4]], rewards=[[0]]))
    leaves = buffer._tree.leaves
    np.testing.assert_allclose(leaves[:5], [1 + 1e-6, 3 + 1e-6, 1e-6, 3 + 1e-6, 0.0])


@pytest.mark.parametrize("buffer_cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_state_round_trip_continues_identically(buffer_cls: type[ReplayBuffer]) -> None:
    a = buffer_cls(capacity=6, seed=3)
    a.add(one_env_episode_ends())
    a.update_priorities(np.flatnonzero(a.sampleable())[:2], np.array([5.0, 0.5]))
    b = buffer_cls(capacity=6, seed=99)
    b.set_state(a.get_state())
    assert all(isinstance(v, np.ndarray) for v in [*b.get_state()["storage"].values(), b.get_state()["counters"]])
    for buffer in (a, b):
        buffer.add(fragment(obs=[[30], [31]], rewards=[[1], [1]]))
    sa, sb = a.sample(64, n_step=2, gamma=GAMMA, beta=0.5), b.sample(64, n_step=2, gamma=GAMMA, beta=0.5)
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    counts = ("num_env_steps_stored", "num_env_steps_added_lifetime", "num_env_steps_evicted_lifetime")
    assert [a.get_metrics()[k] for k in counts] == [b.get_metrics()[k] for k in counts]


def test_bytes_per_env_step_stores_each_observation_once() -> None:
    buffer = ReplayBuffer(capacity=100)
    buffer.add(one_env_episode_ends())
    # obs float32 (4) + action int64 (8) + reward float32 (4) + 3 bools: no next-obs copy.
    assert buffer.bytes_per_env_step() == 4 + 8 + 4 + 3


def test_a_fragment_from_fewer_env_runners_is_skipped_and_cuts_every_stream() -> None:
    """A failed Ray env runner: its replacement starts new episodes, so no window may run across the gap."""
    buffer = ReplayBuffer(capacity=100, num_envs=2)
    buffer.add(fragment(obs=[[0, 100], [1, 101], [2, 102]], rewards=[[1, 1]] * 3))
    buffer.add(fragment(obs=[[50], [51]], rewards=[[1]] * 2))  # one runner missing: not stored
    buffer.add(fragment(obs=[[3, 103], [4, 104]], rewards=[[1, 1]] * 2))
    transitions = all_transitions(buffer, 3)
    # Step 1 is truncated at the cut and bootstraps from obs 2, which starts nothing; 3 goes on as usual.
    assert transitions[0.0] == (1 + GAMMA, 2.0, False, 2.0)
    assert transitions[1.0] == (1.0, 2.0, False, 1.0)
    assert 2.0 not in transitions and transitions[3.0] == (1.0, 4.0, False, 1.0)
    assert buffer.get_metrics()["num_env_steps_evicted_lifetime"] == 2

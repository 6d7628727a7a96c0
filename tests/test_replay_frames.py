"""Frame storage in the replay buffer: every sampled stack equals the one the env runner saw.

A buffer with `frame_stack=K` stores each row's newest frame only; these tests
feed it and a reference buffer that stores whole stacks (`frame_stack=1`) the same
fragments and require the same transitions from both -- over many episodes, ring
wrap-around, both padding schemes, stream cuts and checkpoints.
"""

from __future__ import annotations

import io
from collections import deque

import numpy as np
import pytest
import torch

from rlrun.core.arrays import map_leaves
from rlrun.core.columns import Columns
from rlrun.data.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer
from rlrun.data.replay_buffers.replay_buffer import KEPT_FRAMES

K = 4
GAMMA = 0.9


class StackedFrameEnvs:
    """`num_envs` sub-envs stacking `K` unique uint8 frames of `channels` x 2 x 2 on axis 0 (`[K * channels, 2,
    2]`), autoresetting in NEXT_STEP mode: `fragment(T)` is what the env runner returns. `padding` fills a new
    episode's stack: "reset" (gymnasium's FrameStackObservation), "zero" (envpool) or "other" (a scheme the
    buffer does not know: it keeps those)."""

    def __init__(self, num_envs: int, padding: str, seed: int, channels: int = 1) -> None:
        self.rng = np.random.default_rng(seed)
        self.padding = padding
        self.channels = channels
        self.frames_made = 0
        self.stacks = [self._reset(env) for env in range(num_envs)]
        self.left = [self._episode_length() for _ in range(num_envs)]
        self.prev_done = np.zeros(num_envs, dtype=bool)

    def _frame(self, env: int) -> np.ndarray:
        self.frames_made += 1  # starts at 1: no frame is all zeros
        c = self.frames_made
        frame = np.array([[c & 255, (c >> 8) & 255], [(c >> 16) & 255, env]], dtype=np.uint8)
        return np.stack([frame + channel for channel in range(self.channels)])

    def _reset(self, env: int) -> deque[np.ndarray]:
        frame = self._frame(env)
        pad = {"reset": frame, "zero": np.zeros_like(frame), "other": np.full_like(frame, 7)}[self.padding]
        return deque([pad] * (K - 1) + [frame], maxlen=K)

    def restart(self) -> None:
        """New episodes in every sub-env, as a resumed env runner that could not restore its episodes starts."""
        self.stacks = [self._reset(env) for env in range(len(self.stacks))]
        self.left = [self._episode_length() for _ in self.stacks]
        self.prev_done[:] = False

    def _episode_length(self) -> int:
        return int(self.rng.integers(1, 12))

    def fragment(self, steps: int) -> dict[str, np.ndarray]:
        num_envs = len(self.stacks)
        obs = np.empty((steps, num_envs, K * self.channels, 2, 2), dtype=np.uint8)
        rewards = self.rng.normal(size=(steps, num_envs)).astype(np.float32)
        term, trunc, mask = (np.zeros((steps, num_envs), dtype=bool) for _ in range(3))
        for t in range(steps):
            for env in range(num_envs):
                obs[t, env] = np.concatenate(self.stacks[env])
                mask[t, env] = not self.prev_done[env]
                if self.prev_done[env]:  # the autoreset step: the action is ignored
                    self.stacks[env] = self._reset(env)
                    self.left[env] = self._episode_length()
                    self.prev_done[env] = False
                    continue
                self.stacks[env].append(self._frame(env))
                self.left[env] -= 1
                if self.left[env] == 0:
                    term[t, env], trunc[t, env] = (True, False) if self.rng.random() < 0.5 else (False, True)
                    self.prev_done[env] = True
        return {
            Columns.OBS: obs,
            Columns.ACTIONS: self.rng.integers(0, 6, size=(steps, num_envs)),
            Columns.REWARDS: rewards,
            Columns.TERMINATEDS: term,
            Columns.TRUNCATEDS: trunc,
            Columns.LOSS_MASK: mask,
        }


def assert_same_transitions(frames: ReplayBuffer, whole: ReplayBuffer, n_step: int) -> None:
    """Every transition the frame buffer can start equals the reference's; it drops only the oldest rows."""
    ok, ok_whole = frames.sampleable(), whole.sampleable()
    assert not (ok & ~ok_whole).any()
    lost_rows = set(np.flatnonzero((ok_whole & ~ok).any(axis=1)).tolist())
    assert lost_rows <= set(frames._oldest_rows(K - 1).tolist())  # their stacks read evicted rows
    indices = np.flatnonzero(ok)
    assert len(indices) > 0
    got, expected = frames._transitions(indices, n_step, GAMMA), whole._transitions(indices, n_step, GAMMA)
    assert got[Columns.OBS].dtype == np.uint8 and got[Columns.NEXT_OBS].dtype == np.uint8
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def assert_same_samples(frames: ReplayBuffer, whole: ReplayBuffer, n_step: int) -> dict[str, np.ndarray]:
    batch = frames.sample(64, n_step=n_step, gamma=GAMMA, beta=0.5)
    expected = whole._transitions(batch[Columns.INDICES], n_step, GAMMA)
    for key in expected:
        np.testing.assert_array_equal(batch[key], expected[key], err_msg=key)
    if isinstance(frames, PrioritizedReplayBuffer):
        # No slot whose stack cannot be rebuilt keeps a priority (eviction zeroes the oldest rows' ones).
        np.testing.assert_array_equal(frames._tree.leaves > 0, frames.sampleable().reshape(-1))
        frames.update_priorities(batch[Columns.INDICES], np.arange(64) % 5)
    return batch


def checkpoint_round_trip(buffer: ReplayBuffer, cls: type[ReplayBuffer]) -> ReplayBuffer:
    """`buffer`'s state through a torch checkpoint file, as OffPolicyAlgorithm saves and loads it."""
    state = map_leaves(buffer.get_state(), np.ndarray, lambda a: torch.from_numpy(np.array(a)))
    file = io.BytesIO()
    torch.save(state, file)
    file.seek(0)
    loaded = map_leaves(torch.load(file, weights_only=True), torch.Tensor, torch.Tensor.numpy)
    restored = cls(buffer.capacity, seed=12345, frame_stack=buffer.frame_stack)
    restored.set_state(loaded)
    return restored


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize(("padding", "channels"), [("reset", 1), ("zero", 1), ("other", 1), ("reset", 3)])
def test_rebuilt_stacks_equal_whole_stacks(padding: str, channels: int, n_step: int, cls: type[ReplayBuffer]) -> None:
    envs = StackedFrameEnvs(num_envs=3, padding=padding, seed=n_step, channels=channels)
    envs.fragment(5)  # the stream starts mid-episode (a resume without the buffer): unknown history
    frames, whole = cls(60, seed=0, frame_stack=K), cls(60, seed=0)  # 20 rows: the ring wraps ~6 times
    restored = None
    for i in range(40):
        batch = envs.fragment(int(envs.rng.integers(1, 6)))
        if i == 25:  # a failed env runner: every stream is cut, two of them go on mid-episode
            batch = {k: v[:, :1] for k, v in batch.items()}
        if i == 32:  # the env runner restarted its episodes: the frame buffer sees it and cuts the streams
            envs.restart()
            batch = envs.fragment(3)
            whole._cut_streams()
        for buffer in (frames, whole, restored):
            if buffer is not None:
                buffer.add(batch)
        assert_same_transitions(frames, whole, n_step)
        batch = assert_same_samples(frames, whole, n_step)
        if restored is not None:  # the restored buffer draws the very same batches
            for key, value in assert_same_samples(restored, whole, n_step).items():
                np.testing.assert_array_equal(value, batch[key], err_msg=key)
        if i == 15:
            restored = checkpoint_round_trip(frames, cls)
            assert restored._storage[Columns.OBS].shape == (20, 3, channels, 2, 2)  # frames only, no stacks
            assert restored._storage[Columns.OBS].dtype == np.uint8
    assert restored is not None
    assert_same_transitions(restored, whole, n_step)
    kept = len(frames.get_state()["storage"][KEPT_FRAMES])
    # Known padding keeps no stacks (the cut and the mid-episode start are evicted by now); unknown keeps one
    # per episode start still in the ring.
    assert kept == 0 if padding != "other" else kept > 0


def test_a_stack_that_does_not_shift_by_one_frame_is_refused_and_nothing_is_stored() -> None:
    envs = StackedFrameEnvs(num_envs=2, padding="reset", seed=0)
    buffer = ReplayBuffer(100, frame_stack=K)
    buffer.add(envs.fragment(3))
    before = {k: v.copy() for k, v in buffer.get_state()["storage"].items()}
    batch = envs.fragment(3)
    while not batch[Columns.LOSS_MASK][1:].all():  # a fragment with no episode start inside
        batch = envs.fragment(3)
    batch[Columns.OBS] = batch[Columns.OBS][:, :, ::-1].copy()  # newest frame first: not this buffer's layout
    with pytest.raises(ValueError, match="not the previous step's stack shifted by one frame"):
        buffer.add(batch)
    for key, value in buffer.get_state()["storage"].items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    with pytest.raises(ValueError, match="stack 4 frames on axis 0"):
        ReplayBuffer(100, frame_stack=K).add({**batch, Columns.OBS: batch[Columns.OBS][:, :, :3]})


def test_a_checkpoint_of_whole_observations_does_not_load_into_frame_storage() -> None:
    whole = ReplayBuffer(100)
    whole.add(StackedFrameEnvs(num_envs=2, padding="reset", seed=0).fragment(4))
    with pytest.raises(ValueError, match="1 stacked frame"):
        ReplayBuffer(100, frame_stack=K).set_state(whole.get_state())


def test_atari_frames_take_one_byte_per_pixel_per_env_step() -> None:
    """(4, 84, 84) uint8: one 84x84 frame per env step -- under the issue's 8 KB, SB3 stores about 28 KB."""
    steps, num_envs = 3, 2
    obs = np.random.default_rng(0).integers(0, 256, size=(steps + K - 1, num_envs, 84, 84), dtype=np.uint8)
    obs[:K - 1] = obs[K - 1]  # the first stack holds "reset" padding
    batch = {
        Columns.OBS: np.stack([obs[t:t + K].swapaxes(0, 1) for t in range(steps)]),  # shifting stacks
        Columns.ACTIONS: np.zeros((steps, num_envs), dtype=np.int64),
        Columns.REWARDS: np.zeros((steps, num_envs), dtype=np.float32),
        **{key: np.zeros((steps, num_envs), dtype=bool) for key in (Columns.TERMINATEDS, Columns.TRUNCATEDS)},
        Columns.LOSS_MASK: np.ones((steps, num_envs), dtype=bool),
    }
    buffer = ReplayBuffer(1000, frame_stack=K)
    buffer.add(batch)
    # frame + int64 action + float32 reward + 3 flags + frame depth and padding
    assert buffer.get_metrics()["bytes_per_env_step"] == 84 * 84 + 8 + 4 + 3 + 2
    np.testing.assert_array_equal(buffer.sample(4)[Columns.OBS][0], batch[Columns.OBS][0, 0])  # the only start


def test_real_atari_frames_are_rebuilt_exactly() -> None:
    """ALE Pong through gymnasium's AtariPreprocessing and FrameStackObservation, in a NEXT_STEP vector env."""
    gym = pytest.importorskip("gymnasium")
    ale_py = pytest.importorskip("ale_py")
    gym.register_envs(ale_py)

    def make() -> gym.Env:
        env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0, max_episode_steps=4 * 23)
        return gym.wrappers.FrameStackObservation(gym.wrappers.AtariPreprocessing(env, frame_skip=4), K)

    num_envs, steps = 2, 120
    env = gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    rng = np.random.default_rng(0)
    frames, whole = PrioritizedReplayBuffer(150, seed=0, frame_stack=K), PrioritizedReplayBuffer(150, seed=0)
    current, _ = env.reset(seed=0)
    prev_done = np.zeros(num_envs, dtype=bool)
    for _ in range(steps // 6):
        batch = {key: [] for key in (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS,
                                     Columns.TRUNCATEDS, Columns.LOSS_MASK)}
        for _ in range(6):
            actions = rng.integers(0, 6, size=num_envs)
            batch[Columns.OBS].append(current)
            batch[Columns.LOSS_MASK].append(~prev_done)
            current, reward, term, trunc, _ = env.step(actions)
            for key, value in ((Columns.ACTIONS, actions), (Columns.REWARDS, reward.astype(np.float32)),
                               (Columns.TERMINATEDS, term), (Columns.TRUNCATEDS, trunc)):
                batch[key].append(value)
            prev_done = term | trunc
        fragment = {key: np.stack(value) for key, value in batch.items()}
        assert fragment[Columns.OBS].shape[2:] == (K, 84, 84) and fragment[Columns.OBS].dtype == np.uint8
        frames.add(fragment)
        whole.add(fragment)
        assert_same_transitions(frames, whole, n_step=3)
    env.close()
    assert frames._added > 150 and frames._storage[Columns.LOSS_MASK].size - frames._storage[
        Columns.LOSS_MASK].sum() >= 2  # wrapped, with episode ends in the ring
    assert frames.bytes_per_env_step() < whole.bytes_per_env_step() / 3.9


def test_off_policy_algorithms_store_atari_frames_once() -> None:
    from rlrun.algorithms.dqn import DQNConfig
    from rlrun.algorithms.sac import SACConfig

    assert DQNConfig().environment("ALE/Pong-v5", atari={"frame_stack": 3}).build_replay_buffer().frame_stack == 3
    assert DQNConfig().environment("ALE/Pong-v5", atari=True).training(
        replay_buffer={"type": "prioritized"}).build_replay_buffer().frame_stack == 4
    assert DQNConfig().environment("CartPole-v1").build_replay_buffer().frame_stack == 1
    assert SACConfig().environment("Pendulum-v1").build_replay_buffer().frame_stack == 1


@pytest.mark.slow
def test_dqn_on_atari_replays_uint8_frames_and_checkpoints_them_exactly(tmp_path) -> None:
    """A real DQN run on Pong: frames in the buffer, uint8 stacks in the train batch, an exact checkpoint; the
    resumed env runner restarts its games (ALE state is not plain data), which cuts the streams."""
    from rlrun.algorithms.dqn import DQNConfig

    def config() -> DQNConfig:
        return (DQNConfig().environment("ALE/Pong-v5", atari=True)
                .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=4)
                .training(train_batch_size=8, num_steps_sampled_before_learning_starts=16, n_step=3,
                          replay_buffer={"type": "prioritized", "capacity": 64})
                .debugging(seed=0))

    algo = config().build_algo()
    restored = config().build_algo()
    try:
        for _ in range(12):
            result = algo.train()
        assert result["learners"] and 7056 < result["replay_buffer"]["bytes_per_env_step"] < 7100
        frames = algo.replay_buffer.get_state()["storage"][Columns.OBS]
        assert frames.shape == (32, 2, 1, 84, 84) and frames.dtype == np.uint8
        batch = algo.replay_buffer.sample(8, n_step=3)
        assert batch[Columns.OBS].shape == (8, 4, 84, 84) and batch[Columns.NEXT_OBS].dtype == np.uint8
        algo.save_to_path(tmp_path)
        restored.restore_from_path(tmp_path)
        saved, loaded = algo.replay_buffer.get_state(), restored.replay_buffer.get_state()
        for key, value in saved["storage"].items():
            assert loaded["storage"][key].dtype == value.dtype
            np.testing.assert_array_equal(loaded["storage"][key], value, err_msg=key)
        restored.train()
        assert restored.replay_buffer.sample(8, n_step=3)[Columns.OBS].dtype == np.uint8
    finally:
        algo.stop()
        restored.stop()

"""Checkpoints: exact round trips, no pickle, clear errors, atomic directory replacement."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from rlrun.algorithms.ppo import PPOConfig
from rlrun.core import COMPONENT_OPTIMIZER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from rlrun.core import checkpointing as ckpt
from rlrun.core.checkpointing import CheckpointError, CheckpointWriteError, atomic_directory
from rlrun.env import EnvRunner

MID = DEFAULT_MODULE_ID
ENV = "CartPole-v1"


def config(seed: int = 0, **training) -> PPOConfig:
    training = {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 2, "lr": 1e-3, **training}
    return PPOConfig().environment(ENV).env_runners(num_envs_per_env_runner=4).training(**training).debugging(seed=seed)


@pytest.fixture(scope="module")
def batches():
    runner = EnvRunner(config().env_runner_spec())
    out = [runner.sample(num_timesteps=256) for _ in range(3)]
    runner.stop()
    return out


def _learner(seed: int = 0, **training):
    torch.manual_seed(seed)  # initial weights come from torch's global RNG
    env = gymnasium.make(ENV)
    learner = config(seed, **training).build_learner(env=env)
    env.close()
    learner.build()
    return learner


def assert_state_equal(a, b, path="state"):
    """Exact equality of nested states (tensors/arrays compared element-wise and by dtype)."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping), path
        assert {str(k) for k in a} == {str(k) for k in b}, f"{path}: {sorted(map(str, a))} != {sorted(map(str, b))}"
        b_by_str = {str(k): v for k, v in b.items()}
        for k, v in a.items():
            assert_state_equal(v, b_by_str[str(k)], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_state_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, (torch.Tensor, np.ndarray)):
        ta, tb = torch.as_tensor(np.asarray(a)), torch.as_tensor(np.asarray(b))
        assert ta.dtype == tb.dtype and ta.shape == tb.shape, f"{path}: {ta.dtype}{tuple(ta.shape)} vs {tb.dtype}"
        assert torch.equal(ta, tb), f"{path}: values differ"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _adam_moments(state):
    """{param index: (exp_avg, exp_avg_sq, step)} of the default module's Adam."""
    adam = state[COMPONENT_OPTIMIZER][MID]["default_optimizer"]["state"]
    return {k: (s["exp_avg"], s["exp_avg_sq"], s["step"]) for k, s in adam.items()}


def _assert_same_adam(a, b):
    ma, mb = _adam_moments(a), _adam_moments(b)
    assert ma and set(ma) == set(mb)
    for k in ma:
        for x, y in zip(ma[k], mb[k], strict=True):
            assert torch.equal(torch.as_tensor(x), torch.as_tensor(y)), f"Adam state of parameter {k} differs"


# -- round trips ------------------------------------------------------------------------------


def test_learner_save_restore_round_trip(tmp_path, batches):
    learner = _learner(seed=0, use_kl_loss=True, kl_target=1e-9)  # the KL coefficient moves every update
    for b in batches[:2]:
        learner.update(batch=b, timesteps={})
    saved = learner.get_state()
    assert _adam_moments(saved) and all(float(s[2]) > 0 for s in _adam_moments(saved).values())
    learner.save_to_path(tmp_path / "learner")

    fresh = _learner(seed=123, use_kl_loss=True, kl_target=1e-9)
    with pytest.raises(AssertionError):
        assert_state_equal(fresh.get_state()[COMPONENT_RL_MODULE], saved[COMPONENT_RL_MODULE])
    fresh.restore_from_path(tmp_path / "learner")
    restored = fresh.get_state()
    assert_state_equal(restored, saved)
    _assert_same_adam(restored, saved)
    # the restored learner is usable and its first update matches the original's loss on the same data
    r_orig = learner.update(batch=batches[2], timesteps={})[MID]
    r_rest = fresh.update(batch=batches[2], timesteps={})[MID]
    assert r_rest["curr_kl_coeff"] == r_orig["curr_kl_coeff"]


def test_learner_restore_continues_training_exactly(tmp_path, batches):
    """API.md: save_to_path stores "enough to continue training exactly" -- including the minibatch RNG."""
    learner = _learner(seed=0)
    learner.update(batch=batches[0], timesteps={})
    learner.save_to_path(tmp_path / "learner")
    fresh = _learner(seed=0)
    fresh.restore_from_path(tmp_path / "learner")
    for b in batches[1:]:
        learner.update(batch=b, timesteps={})
        fresh.update(batch=b, timesteps={})
    assert_state_equal(fresh.get_state(), learner.get_state())


def test_learner_group_save_restore_round_trip(tmp_path, batches):
    env = gymnasium.make(ENV)
    torch.manual_seed(0)
    group = config(0).build_learner_group(env=env)
    for b in batches[:2]:
        group.update(batch=b, timesteps={})
    saved = group.get_state()
    group.save_to_path(tmp_path / "group")
    torch.manual_seed(99)
    fresh = config(0).build_learner_group(env=env)
    env.close()
    fresh.restore_from_path(tmp_path / "group")
    assert_state_equal(fresh.get_state(), saved)
    _assert_same_adam(fresh.get_state(), saved)
    assert_state_equal(fresh.get_weights(), group.get_weights())


def test_learner_save_overwrites_existing_checkpoint(tmp_path, batches):
    learner = _learner(seed=0)
    learner.save_to_path(tmp_path / "ckpt")
    learner.update(batch=batches[0], timesteps={})
    learner.save_to_path(tmp_path / "ckpt")
    fresh = _learner(seed=5)
    fresh.restore_from_path(tmp_path / "ckpt")
    assert_state_equal(fresh.get_state(), learner.get_state())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary or old directories left


@pytest.fixture(scope="module")
def trained_algo_checkpoint(tmp_path_factory):
    algo = config(seed=0).build_algo()
    for _ in range(2):
        last = algo.train()
    path = tmp_path_factory.mktemp("algo") / "checkpoint"
    algo.save_to_path(path)
    state = algo.learner_group.get_state()
    runner_state = algo.env_runner_group.get_state()
    algo.stop()
    return path, state, runner_state, last


def test_algorithm_save_restore_round_trip(trained_algo_checkpoint):
    path, state, runner_state, last = trained_algo_checkpoint
    fresh = config(seed=7).build_algo()
    try:
        fresh.restore_from_path(path)
        restored = fresh.learner_group.get_state()
        assert_state_equal(restored, state)
        _assert_same_adam(restored, state)
        assert_state_equal(fresh.env_runner_group.get_state(), runner_state)
        nxt = fresh.train()
        assert nxt["training_iteration"] == last["training_iteration"] + 1
        assert nxt["num_env_steps_sampled_lifetime"] > last["num_env_steps_sampled_lifetime"]
        assert nxt["num_env_steps_sampled_lifetime"] - last["num_env_steps_sampled_lifetime"] <= 256
    finally:
        fresh.stop()


def test_algorithm_checkpoint_contains_no_pickle(trained_algo_checkpoint):
    path, state, _, _ = trained_algo_checkpoint
    files = sorted(p for p in Path(path).rglob("*") if p.is_file())
    assert files
    for f in files:
        assert f.suffix in {".safetensors", ".pt", ".json"}, f"unexpected checkpoint file {f}"
        if f.suffix == ".pt":
            torch.load(f, weights_only=True, map_location="cpu")  # raises on any pickled class
        elif f.suffix == ".json":
            import json

            json.loads(f.read_text())
    module_files = [f for f in files if f.suffix == ".safetensors"]
    assert module_files, "module weights must be stored as .safetensors"
    weights = load_file(str(module_files[0]))
    assert_state_equal(weights, state[COMPONENT_RL_MODULE][MID])


def test_learner_checkpoint_files_load_without_pickle(tmp_path, batches):
    learner = _learner(seed=0)
    learner.update(batch=batches[0], timesteps={})
    learner.save_to_path(tmp_path / "l")
    files = {p.name: p for p in (tmp_path / "l").iterdir()}
    st = [p for name, p in files.items() if name.endswith(".safetensors")]
    assert len(st) == 1
    assert_state_equal(load_file(str(st[0])), learner.get_state()[COMPONENT_RL_MODULE][MID])
    optimizer_files = 0
    for p in files.values():
        assert p.suffix in {".safetensors", ".pt", ".json"}, f"unexpected checkpoint file {p}"
        if p.suffix == ".pt":
            obj = torch.load(p, weights_only=True)  # raises on any pickled class
            if isinstance(obj, Mapping) and MID in obj and "state" in obj[MID].get("default_optimizer", {}):
                _assert_same_adam({COMPONENT_OPTIMIZER: obj}, learner.get_state())
                optimizer_files += 1
    assert optimizer_files == 1


# -- errors -------------------------------------------------------------------------------------

GARBAGE = b"\x00\x9f\xff\xfe not a checkpoint \x80\x81"


def _corrupt(path: Path, how: str) -> None:
    if how == "missing":
        path.unlink()
    elif how == "garbage":
        path.write_bytes(GARBAGE)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")


def _restore_problem(obj, path: Path, name: str, how: str) -> list[str]:
    """[] if restoring `path` raises CheckpointError naming `name`; else a description of what happened."""
    try:
        obj.restore_from_path(path)
    except CheckpointError as e:
        return [] if name in str(e) else [f"{how} {name}: CheckpointError does not name the file: {e}"]
    except Exception as e:
        return [f"{how} {name}: raised {type(e).__name__} instead of CheckpointError: {e}"]
    return [f"{how} {name}: restore succeeded"]


@pytest.fixture(scope="module")
def learner_checkpoint(tmp_path_factory, batches):
    learner = _learner(seed=0)
    learner.update(batch=batches[0], timesteps={})
    path = tmp_path_factory.mktemp("learner") / "ckpt"
    learner.save_to_path(path)
    return path


@pytest.mark.parametrize("how", ["missing", "garbage", "truncated", "empty"])
def test_corrupt_learner_checkpoint_raises_checkpoint_error(tmp_path, learner_checkpoint, how):
    names = sorted(p.name for p in learner_checkpoint.iterdir())
    assert names
    problems: list[str] = []
    for name in names:
        copy = tmp_path / f"{how}-{name}"
        copy.mkdir()
        for p in learner_checkpoint.iterdir():
            (copy / p.name).write_bytes(p.read_bytes())
        _corrupt(copy / name, how)
        problems += _restore_problem(_learner(seed=1), copy, name, how)
    assert not problems, "\n".join(problems)


def test_missing_checkpoint_directory_raises_checkpoint_error(tmp_path):
    learner = _learner(seed=0)
    with pytest.raises(CheckpointError, match="nowhere"):
        learner.restore_from_path(tmp_path / "nowhere")


@pytest.mark.parametrize("how", ["missing", "garbage"])
def test_corrupt_algorithm_checkpoint_raises_checkpoint_error(tmp_path, trained_algo_checkpoint, how):
    path = trained_algo_checkpoint[0]
    rel_files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    problems: list[str] = []
    algo = config(seed=0).build_algo()
    try:
        for rel in rel_files:
            copy = tmp_path / f"{how}-{str(rel).replace('/', '_')}"
            for p in path.rglob("*"):
                if p.is_file():
                    (copy / p.relative_to(path)).parent.mkdir(parents=True, exist_ok=True)
                    (copy / p.relative_to(path)).write_bytes(p.read_bytes())
            _corrupt(copy / rel, how)
            problems += _restore_problem(algo, copy, rel.name, how)
    finally:
        algo.stop()
    assert not problems, "\n".join(problems)


def test_algorithm_checkpoint_of_wrong_format_is_rejected(tmp_path, trained_algo_checkpoint):
    import json
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(trained_algo_checkpoint[0], copy)
    meta = json.loads((copy / "algorithm_state.json").read_text())
    meta["format"] = 999
    (copy / "algorithm_state.json").write_text(json.dumps(meta))
    algo = config(seed=0).build_algo()
    try:
        with pytest.raises(CheckpointError, match="format"):
            algo.restore_from_path(copy)
    finally:
        algo.stop()


# -- atomic_directory ---------------------------------------------------------------------------


def test_atomic_directory_success_creates_and_replaces(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_directory_leaves_nothing_when_block_raises(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(ValueError, match="boom"), atomic_directory(target) as tmp:
        (tmp / "partial.txt").write_text("half")
        raise ValueError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_keeps_old_when_block_raises(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(ValueError, match="boom"), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("new")
        raise ValueError("boom")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_directory_keeps_old_when_replacing_fails_midway(tmp_path, monkeypatch):
    """Fault injection: moving the new directory into place fails after the old one was moved aside."""
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("old")

    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".tmp-"):
            raise OSError("simulated failure while moving the new checkpoint into place")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(ckpt.os, "replace", failing_replace)
    with pytest.raises(CheckpointWriteError, match=f"could not write checkpoint {target}: simulated failure"), \
            atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("new")
    monkeypatch.undo()

    assert target.is_dir(), f"the old checkpoint is gone; parent holds {sorted(p.name for p in tmp_path.iterdir())}"
    assert (target / "a.txt").read_text() == "old"
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_atomic_directory_save_of_learner_that_fails_keeps_previous_checkpoint(tmp_path, batches, monkeypatch):
    """A save that dies while writing (here: the optimizer file) leaves the previous checkpoint usable."""
    learner = _learner(seed=0)
    learner.save_to_path(tmp_path / "ckpt")
    before = learner.get_state()
    learner.update(batch=batches[0], timesteps={})

    def failing_save_torch(path, obj):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ckpt, "save_torch", failing_save_torch)
    with pytest.raises(CheckpointWriteError, match=f"could not write checkpoint {tmp_path / 'ckpt'}: disk full"):
        learner.save_to_path(tmp_path / "ckpt")
    monkeypatch.undo()
    fresh = _learner(seed=3)
    fresh.restore_from_path(tmp_path / "ckpt")
    assert_state_equal(fresh.get_state(), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_replacement_cut_short_by_a_crash_is_undone(tmp_path: Path) -> None:
    """The layout a crash leaves inside atomic_directory: `best` moved aside, its replacement still temporary."""
    with atomic_directory(tmp_path / "best") as d:
        (d / "algorithm_state.json").write_text('{"iteration": 3}')
    with atomic_directory(tmp_path / "checkpoint_000004") as d:
        (d / "algorithm_state.json").write_text('{"iteration": 4}')
    os.replace(tmp_path / "best", tmp_path / ".old-best-4242")
    (tmp_path / ".tmp-best-4242").mkdir()
    (tmp_path / ".tmp-best-4242" / "algorithm_state.json").write_text('{"iteration": 5}')

    assert ckpt.restore_interrupted_replacements(tmp_path) == [tmp_path / "best"]
    assert (tmp_path / "best" / "algorithm_state.json").read_text() == '{"iteration": 3}'
    assert not list(tmp_path.glob(".old-*"))
    # Nothing else moves: a complete directory beside a stale `.old-*` of the same name stays as it is.
    (tmp_path / ".old-checkpoint_000004-1").mkdir()
    assert ckpt.restore_interrupted_replacements(tmp_path) == []
    assert (tmp_path / "checkpoint_000004" / "algorithm_state.json").read_text() == '{"iteration": 4}'

"""Same config + seed -> identical training metrics; another seed -> different ones. Embedded and Ray mode.

Ray mode is reproducible for synchronous algorithms: learner actors draw their
initial weights from the seed, env runner actors seed their envs and action
sampling by worker index, and fragments merge in worker order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.ppo import PPOConfig
from rlrun.run.recorder import flatten

ITERATIONS = 5
TIMING_WORDS = ("time", "timer", "throughput")


def is_timing(key: str) -> bool:
    """`time_this_iter_s`, `timers`, `..._throughput` -- but not `num_env_steps_sampled_lifetime`."""
    tokens = key.split("_")
    return "time" in tokens or any(word in key for word in TIMING_WORDS[1:])


def config(seed: int) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=4)
        .training(train_batch_size=256, minibatch_size=64, num_epochs=2, lr=1e-3)
        .debugging(seed=seed)
    )


def strip_timing(results: Mapping) -> dict:
    """The results without any key that measures wall-clock time."""
    out = {}
    for key, value in results.items():
        if is_timing(key):
            continue
        out[key] = strip_timing(value) if isinstance(value, Mapping) else value
    return out


def ray_config(seed: int) -> PPOConfig:
    """2 env runner actors x 2 envs and 2 DDP learners."""
    return config(seed).env_runners(num_env_runners=2, num_envs_per_env_runner=2).learners(num_learners=2)


def run(seed: int, iterations: int = ITERATIONS, build=config) -> list[dict]:
    algo = build(seed).build_algo()
    try:
        return [strip_timing(algo.train()) for _ in range(iterations)]
    finally:
        algo.stop()


def assert_same_metrics(first: list[dict], second: list[dict], start: int = 1) -> None:
    for i, (a, b) in enumerate(zip(first, second, strict=True), start=start):
        la, lb = flatten(a), flatten(b)
        assert set(la) == set(lb), f"iteration {i}: different keys"
        diffs = {k: (la[k], lb[k]) for k in la if la[k] != lb[k]}
        assert not diffs, f"iteration {i}: same seed, different metrics: {diffs}"


def assert_resumes_exactly(build: Callable[[], AlgorithmConfig], checkpoint: Path, iterations: int = 4,
                            at: int = 2) -> list[dict]:
    """Train `iterations` straight, then `at` iterations, a checkpoint, and the rest in a fresh algorithm restored
    from it: the resumed iterations must report exactly what the straight run did. Returns the resumed results."""
    straight = build().build_algo()
    try:
        expected = [strip_timing(straight.train()) for _ in range(iterations)]
    finally:
        straight.stop()
    first = build().build_algo()
    try:
        head = [strip_timing(first.train()) for _ in range(at)]
        first.save_to_path(checkpoint)
    finally:
        first.stop()
    resumed = build().build_algo()
    try:
        resumed.restore_from_path(checkpoint)
        tail = [strip_timing(resumed.train()) for _ in range(iterations - at)]
    finally:
        resumed.stop()
    assert_same_metrics(expected[:at], head)
    assert_same_metrics(expected[at:], tail, start=at + 1)
    return tail


def test_same_seed_identical_metrics_different_seed_different():
    first = run(seed=11)
    second = run(seed=11)
    other = run(seed=12)

    leaves = flatten(first[-1])
    assert "learners/default_policy/total_loss" in leaves
    assert "env_runners/episode_return_mean" in leaves
    assert "num_env_steps_sampled_lifetime" in leaves
    assert not any(is_timing(part) for k in leaves for part in k.split("/"))
    assert "time_this_iter_s" not in leaves and "timers" not in first[-1]

    assert_same_metrics(first, second)

    differing = [
        k for k in flatten(first[-1]) if k in flatten(other[-1]) and flatten(first[-1])[k] != flatten(other[-1])[k]
    ]
    assert "learners/default_policy/total_loss" in differing
    assert "env_runners/episode_return_mean" in differing


@pytest.mark.ray
def test_ray_mode_is_reproducible_and_resumes_exactly(ray_cluster, tmp_path: Path) -> None:
    """Two runs of one seed agree; one checkpointed after 2 iterations and restored into new actors goes on exactly.

    A: 4 iterations straight. B: 2 iterations (B = A so far), checkpoint. C: B's checkpoint restored into fresh
    env runner and learner actors, 2 iterations (C = A's iterations 3 and 4).
    """
    straight = run(seed=5, iterations=4, build=ray_config)
    algo = ray_config(5).build_algo()
    try:
        first_two = [strip_timing(algo.train()) for _ in range(2)]
        algo.save_to_path(tmp_path / "checkpoint")
    finally:
        algo.stop()
    restored = ray_config(5).build_algo()
    try:
        restored.restore_from_path(tmp_path / "checkpoint")
        resumed = [strip_timing(restored.train()) for _ in range(2)]
    finally:
        restored.stop()
    assert flatten(straight[-1])["learners/default_policy/num_module_steps_trained"] > 0
    assert_same_metrics(straight[:2], first_two)
    assert_same_metrics(straight[2:], resumed, start=3)

"""Same config + seed -> identical training metrics; another seed -> different ones."""

from __future__ import annotations

from collections.abc import Mapping

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


def run(seed: int) -> list[dict]:
    algo = config(seed).build_algo()
    try:
        return [strip_timing(algo.train()) for _ in range(ITERATIONS)]
    finally:
        algo.stop()


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

    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        la, lb = flatten(a), flatten(b)
        assert set(la) == set(lb), f"iteration {i + 1}: different keys"
        diffs = {k: (la[k], lb[k]) for k in la if la[k] != lb[k]}
        assert not diffs, f"iteration {i + 1}: same seed, different metrics: {diffs}"

    differing = [
        k for k in flatten(first[-1]) if k in flatten(other[-1]) and flatten(first[-1])[k] != flatten(other[-1])[k]
    ]
    assert "learners/default_policy/total_loss" in differing
    assert "env_runners/episode_return_mean" in differing

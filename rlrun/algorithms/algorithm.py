"""Algorithm: the training loop around an algorithm's `training_step()`.

`train()` runs one iteration and adds what every algorithm reports the same
way -- counters, episode statistics over a moving window, timers, throughput --
so an algorithm's own `training_step()` stays its paper's pseudocode.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.core import checkpointing as ckpt
from rlrun.env import EnvRunner, EnvRunnerGroup

CHECKPOINT_FORMAT = 1
SMOOTHING_EPISODES = 100


class Algorithm:
    """Owns an EnvRunnerGroup and a LearnerGroup and alternates sampling and learning."""

    def __init__(self, config: AlgorithmConfig, smoothing_episodes: int = SMOOTHING_EPISODES) -> None:
        self.config = config
        _seed_everything(config.seed)
        self.env_runner_group = EnvRunnerGroup(config=config)
        self.learner_group = config.build_learner_group(env=self.env_runner_group.env)
        self.env_runner_group.sync_weights(self.learner_group.get_weights())
        self.iteration = 0
        self.counters: dict[str, int] = defaultdict(int)
        self._episode_returns: deque[float] = deque(maxlen=smoothing_episodes)
        self._episode_lens: deque[int] = deque(maxlen=smoothing_episodes)
        self._timers: dict[str, float] = {}
        self._time_total = 0.0
        self._eval_runner: EnvRunner | None = None

    def training_step(self) -> dict[str, Any]:
        """One iteration of the algorithm's pseudocode; returns its own metrics."""
        raise NotImplementedError

    @contextlib.contextmanager
    def timer(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self._timers[name] = time.perf_counter() - start

    def train(self) -> dict[str, Any]:
        """Run one iteration; returns RLlib-style nested results."""
        start = time.perf_counter()
        steps_before = self.counters["num_env_steps_sampled_lifetime"]
        results = self.training_step()
        episodes = self.env_runner_group.get_metrics()
        self._episode_returns.extend(episodes["episode_returns"])
        self._episode_lens.extend(episodes["episode_lens"])
        self.counters["num_episodes_lifetime"] += len(episodes["episode_returns"])
        self.iteration += 1
        elapsed = time.perf_counter() - start
        self._time_total += elapsed
        steps = self.counters["num_env_steps_sampled_lifetime"] - steps_before
        results.setdefault("env_runners", {}).update(self._episode_stats(len(episodes["episode_returns"])))
        results["env_runners"]["num_healthy_env_runners"] = self.env_runner_group.num_healthy_env_runners
        results["fault_tolerance"] = {"num_remote_worker_restarts": self.env_runner_group.num_restarts}
        return {
            "training_iteration": self.iteration,
            **self.counters,
            **results,
            "num_env_steps_sampled_lifetime_throughput": steps / elapsed if elapsed > 0 else 0.0,
            "timers": {**self._timers, "training_iteration": elapsed},
            "time_this_iter_s": elapsed,
            "time_total_s": self._time_total,
        }

    def _episode_stats(self, num_new: int) -> dict[str, float]:
        stats: dict[str, float] = {"num_episodes": num_new}
        if self._episode_returns:
            returns = np.asarray(self._episode_returns)
            stats.update(
                episode_return_mean=float(returns.mean()),
                episode_return_min=float(returns.min()),
                episode_return_max=float(returns.max()),
                episode_len_mean=float(np.mean(self._episode_lens)),
            )
        return stats

    def evaluate(self, num_episodes: int = 10) -> dict[str, Any]:
        """Greedy episodes with the current weights, on an env runner of their own."""
        if self._eval_runner is None:
            self._eval_runner = EnvRunner(config=self.config, worker_index=1_000)
        self._eval_runner.set_weights(self.learner_group.get_weights())
        episodes = self._eval_runner.sample_episodes(num_episodes, explore=False)
        returns = np.asarray(episodes["episode_returns"])
        return {
            "evaluation": {
                "episode_return_mean": float(returns.mean()),
                "episode_return_std": float(returns.std()),
                "episode_return_min": float(returns.min()),
                "episode_return_max": float(returns.max()),
                "episode_len_mean": float(np.mean(episodes["episode_lens"])),
                "num_episodes": len(returns),
            }
        }

    # -- checkpoints -------------------------------------------------------------------

    def save_to_path(self, path: str | Path) -> Path:
        """Everything needed to continue: learner group, env-runner RNG, counters, episode window."""
        path = Path(path)
        with ckpt.atomic_directory(path) as tmp:
            self.learner_group.save_to_path(tmp / "learner_group")
            ckpt.save_torch(tmp / "env_runners.pt", self.env_runner_group.get_state())
            ckpt.save_json(
                tmp / "algorithm_state.json",
                {
                    "format": CHECKPOINT_FORMAT,
                    "algorithm": type(self).__name__,
                    "iteration": self.iteration,
                    "counters": dict(self.counters),
                    "time_total_s": self._time_total,
                    "episode_returns": list(self._episode_returns),
                    "episode_lens": list(self._episode_lens),
                },
            )
        return path

    def restore_from_path(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            raise ckpt.CheckpointError(f"checkpoint directory {path} does not exist")
        state = ckpt.load_json(path / "algorithm_state.json")
        if state.get("format") != CHECKPOINT_FORMAT or state.get("algorithm") != type(self).__name__:
            raise ckpt.CheckpointError(
                f"{path} is a {state.get('algorithm')} checkpoint of format {state.get('format')}; "
                f"expected {type(self).__name__} format {CHECKPOINT_FORMAT}"
            )
        self.learner_group.restore_from_path(path / "learner_group")
        self.env_runner_group.set_state(ckpt.load_torch(path / "env_runners.pt"))
        self.env_runner_group.sync_weights(self.learner_group.get_weights())
        self.iteration = state["iteration"]
        self.counters = defaultdict(int, state["counters"])
        self._time_total = state["time_total_s"]
        self._episode_returns.clear()
        self._episode_returns.extend(state["episode_returns"])
        self._episode_lens.clear()
        self._episode_lens.extend(state["episode_lens"])

    def stop(self) -> None:
        """Release env runners, learners and anything they started."""
        self.env_runner_group.stop()
        self.learner_group.stop()
        if self._eval_runner is not None:
            self._eval_runner.stop()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

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

from rlrun.algorithms.algorithm_config import AlgorithmConfig, single_spaces
from rlrun.callbacks import runner_metrics
from rlrun.cluster import ensure_ray
from rlrun.core import COMPONENT_RL_MODULE
from rlrun.core import checkpointing as ckpt
from rlrun.core.arrays import map_leaves
from rlrun.core.learner.failures import NonFiniteUpdateError, cause_of
from rlrun.core.learner.learner import load_learner_checkpoint
from rlrun.core.space_json import space_from_json, space_to_json
from rlrun.env import EnvRunner, EnvRunnerGroup
from rlrun.env.env_runner import summarize_episodes
from rlrun.env.env_runner_group import make_env_runner

# 2: env_runners.pt holds the episodes in flight (env state, observations), not only the RNG.
# 3: spaces.json holds the modules' spaces (`rlrun.load` builds a policy without the env).
CHECKPOINT_FORMAT = 3
# The formats rlrun reads: a user's runs from before spaces.json still resume, evaluate and load (their readers
# take the spaces from the run's env, as they did then).
READABLE_FORMATS = (2, 3)
SMOOTHING_EPISODES = 100
# What a multi-agent runner reports beside the episode return (the sum over agents) -> the metric of its means.
SPLIT_RETURNS = {"agent_episode_returns": "agent_episode_return_mean",
                 "module_episode_returns": "module_episode_return_mean"}
# The evaluation env runner's index: its seed (config.seed + 10_000 * index) is apart from every sampling runner's,
# and `rlrun-eval` uses the same one, so it reproduces a run's `evaluation/*` numbers from its checkpoint.
EVALUATION_WORKER_INDEX = 1_000
# The modules' observation and action spaces (a multi-agent run's: Dicts by module id), for `rlrun.load`.
SPACES_FILE = "spaces.json"


class Algorithm:
    """Owns an EnvRunnerGroup and a LearnerGroup and alternates sampling and learning."""

    def __init__(self, config: AlgorithmConfig, smoothing_episodes: int = SMOOTHING_EPISODES) -> None:
        self.config = config
        _seed_everything(config.seed)
        if config.num_env_runners or config.num_learners:
            # Sized for the whole run: the groups below check only their own actors against the cluster.
            ensure_ray(config.run_resources())
        group_spec = config.env_runner_group_spec()
        # The evaluation runner's spec: the sampling runners', the env's kind resolved once for both.
        self._runner_spec = group_spec.runner
        self.env_runner_group = EnvRunnerGroup(group_spec)
        self.learner_group = config.build_learner_group(env=self.env_runner_group.env)
        if config.init_from is not None:
            self._init_modules_from(config.init_from)
        self.env_runner_group.sync_weights(self.learner_group.get_weights())
        self.iteration = 0
        self.counters: dict[str, int] = defaultdict(int)
        self._episode_returns: deque[float] = deque(maxlen=smoothing_episodes)
        self._episode_lens: deque[int] = deque(maxlen=smoothing_episodes)
        # Multi-agent runs: the same window per agent and per module (`agent_episode_returns`, ...).
        self._split_returns: dict[str, dict[str, deque[float]]] = {
            key: defaultdict(lambda: deque(maxlen=smoothing_episodes)) for key in SPLIT_RETURNS}
        self._timers: dict[str, float] = {}
        self._time_total = 0.0
        self._eval_runner: EnvRunner | None = None
        # The latest `evaluate()` results; saved with every checkpoint (`checkpoints/best` is ranked by them).
        self.last_evaluation: dict[str, Any] | None = None

    def _init_modules_from(self, path: str) -> None:
        """Start the modules that `path` (an algorithm checkpoint) also holds from its weights (`init_from`)."""
        try:
            theirs = load_module_weights(path)
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"multi_agent.init_from: {e}") from None
        ours = self.learner_group.get_weights()
        shared = sorted(set(theirs) & set(ours))
        if not shared:
            raise ckpt.CheckpointError(f"multi_agent.init_from={path} holds modules {sorted(theirs)}, none of this "
                                       f"run's {sorted(ours)}")
        for module_id in shared:
            shapes = {k: np.shape(v) for k, v in ours[module_id].items()}
            if {k: np.shape(v) for k, v in theirs[module_id].items()} != shapes:
                raise ckpt.CheckpointError(f"multi_agent.init_from={path}: module '{module_id}' has other weight "
                                           "shapes there (a different env or model config)")
        self.learner_group.set_weights({m: theirs[m] for m in shared})

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
        try:
            results = self.training_step()
        except NonFiniteUpdateError as error:  # the learner knows the module and term, the run the iteration
            raise NonFiniteUpdateError(f"iteration {self.iteration + 1}: {cause_of(error)}") from None
        episodes = self.env_runner_group.get_metrics()
        self._episode_returns.extend(episodes["episode_returns"])
        self._episode_lens.extend(episodes["episode_lens"])
        for key, windows in self._split_returns.items():
            for name, returns in episodes.get(key, {}).items():
                windows[name].extend(returns)
        self.counters["num_episodes_lifetime"] += len(episodes["episode_returns"])
        self.iteration += 1
        elapsed = time.perf_counter() - start
        self._time_total += elapsed
        steps = self.counters["num_env_steps_sampled_lifetime"] - steps_before
        # What the env runners' callbacks logged this iteration, each key reduced over every runner's values;
        # first, so that a custom key never replaces one of rlrun's own.
        results["env_runners"] = {**runner_metrics(episodes), **results.get("env_runners", {}),
                                  **self._episode_stats(len(episodes["episode_returns"]))}
        results["env_runners"]["num_healthy_env_runners"] = self.env_runner_group.num_healthy_env_runners
        results["fault_tolerance"] = {"num_remote_worker_restarts": self.env_runner_group.num_restarts,
                                      "num_learner_restarts": self.learner_group.num_restarts}
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
        for key, windows in self._split_returns.items():
            if windows:  # agent_episode_return_mean/<agent>, module_episode_return_mean/<module>
                stats[SPLIT_RETURNS[key]] = {name: float(np.mean(w)) for name, w in sorted(windows.items())}
        return stats

    def evaluate(self, num_episodes: int = 10) -> dict[str, Any]:
        """Greedy episodes with the current weights and normalisation statistics, on an env runner of their own;
        what its callbacks logged joins the results (`evaluation/<key>`)."""
        if self._eval_runner is None:
            self._eval_runner = make_env_runner(self._runner_spec, EVALUATION_WORKER_INDEX)
        self._eval_runner.set_weights(self.learner_group.get_weights())
        self._eval_runner.sync_normalization(self.env_runner_group.get_normalization())
        episodes = self._eval_runner.sample_episodes(num_episodes, explore=False)
        self.last_evaluation = summarize_episodes(episodes["episode_returns"], episodes["episode_lens"])
        return {"evaluation": {**runner_metrics(episodes), **self.last_evaluation}}

    # -- checkpoints -------------------------------------------------------------------

    def save_to_path(self, path: str | Path) -> Path:
        """Everything needed to continue exactly: learner group, env runners, counters, episode window.

        The env runners' state (RNG, episodes in flight) is plain numpy data; it is stored as
        tensors in a weights-only torch file. The global python/numpy/torch RNGs are seeded
        once when the algorithm is built and not drawn from afterwards, so they are not saved.
        """
        path = Path(path)
        with ckpt.atomic_directory(path) as tmp:
            self.learner_group.save_to_path(tmp / "learner_group")
            # A copy of each array: those from Ray actors are read-only.
            runner_state = map_leaves(self.env_runner_group.get_state(), np.ndarray,
                                      lambda a: torch.from_numpy(np.array(a)))
            ckpt.save_torch(tmp / "env_runners.pt", runner_state)
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
                    **{key: {name: list(w) for name, w in windows.items()}
                       for key, windows in self._split_returns.items()},
                    "evaluation": self.last_evaluation,
                },
            )
            obs_space, act_space = single_spaces(self.env_runner_group.env)
            ckpt.save_json(tmp / SPACES_FILE, {"observation_space": space_to_json(obs_space),
                                               "action_space": space_to_json(act_space)})
            self.save_extra_state(tmp)
        return path

    def save_extra_state(self, path: Path) -> None:
        """Write state the algorithm keeps between iterations (an off-policy replay buffer) into `path`.

        Called inside the checkpoint's temporary directory, so it is part of the atomic write.
        """

    def restore_extra_state(self, path: Path) -> None:
        """Read what `save_extra_state` wrote; called last in `restore_from_path`, after the counters."""

    def restore_from_path(self, path: str | Path) -> None:
        """Continue from a `save_to_path` checkpoint; a missing, corrupt or foreign one raises CheckpointError."""
        path = Path(path)
        state = read_checkpoint_state(path)
        if state.get("algorithm") != type(self).__name__:
            raise ckpt.CheckpointError(f"{path} is a {state.get('algorithm')} checkpoint, not {type(self).__name__}")
        saved, ours = read_checkpoint_spaces(path), single_spaces(self.env_runner_group.env)
        if saved is not None and saved != ours:
            raise ckpt.CheckpointError(f"{path} was saved for observation space {saved[0]} and action space "
                                       f"{saved[1]}; this run's env has {ours[0]} and {ours[1]}")
        self.learner_group.restore_from_path(path / "learner_group")
        runner_state = load_env_runner_state(path)
        try:
            self.env_runner_group.set_state(runner_state)
        except (KeyError, ValueError) as e:
            raise ckpt.CheckpointError(f"env-runner state in {path} does not fit this env: {e}") from None
        self.env_runner_group.sync_weights(self.learner_group.get_weights())
        self.iteration = state["iteration"]
        self.counters = defaultdict(int, state["counters"])
        self._time_total = state["time_total_s"]
        self._episode_returns.clear()
        self._episode_returns.extend(state["episode_returns"])
        self._episode_lens.clear()
        self._episode_lens.extend(state["episode_lens"])
        for key, windows in self._split_returns.items():
            windows.clear()
            for name, returns in state.get(key, {}).items():
                windows[name].extend(returns)
        self.last_evaluation = state["evaluation"]
        self.restore_extra_state(path)

    def stop(self) -> None:
        """Release env runners, learners and anything they started."""
        self.env_runner_group.stop()
        self.learner_group.stop()
        if self._eval_runner is not None:
            self._eval_runner.stop()


def read_checkpoint_state(path: str | Path) -> dict[str, Any]:
    """The metadata of an algorithm checkpoint (iteration, counters, last evaluation), format-checked."""
    path = Path(path)
    if not path.is_dir():
        raise ckpt.CheckpointError(f"checkpoint directory {path} does not exist")
    state = ckpt.load_json(path / "algorithm_state.json")
    if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
        found = state.get("format") if isinstance(state, dict) else None
        raise ckpt.CheckpointError(f"{path} is a checkpoint of format {found}; rlrun reads formats "
                                   f"{' and '.join(map(str, READABLE_FORMATS))}")
    if not isinstance(state.get("iteration"), int):  # every reader orders checkpoints by it
        raise ckpt.CheckpointError(f"checkpoint file {path / 'algorithm_state.json'} is corrupt (no iteration)")
    return state


def load_env_runner_state(path: str | Path) -> dict[str, Any]:
    """The env runners' state of an algorithm checkpoint (`EnvRunnerGroup.get_state()`), as numpy data."""
    return map_leaves(ckpt.load_torch(Path(path) / "env_runners.pt"), torch.Tensor, torch.Tensor.numpy)


def load_module_weights(path: str | Path) -> dict[str, Any]:
    """Module id -> weights of an algorithm checkpoint, e.g. to evaluate it without building learners."""
    read_checkpoint_state(path)
    state, _ = load_learner_checkpoint(Path(path) / "learner_group")
    return state[COMPONENT_RL_MODULE]


def read_checkpoint_spaces(path: str | Path) -> tuple[Any, Any] | None:
    """(observation space, action space) the checkpoint's modules were built on (multi-agent: Dicts by module
    id); None for a format-2 checkpoint, which predates spaces.json (its readers take the run's env's spaces);
    CheckpointError naming spaces.json if it is missing or corrupt."""
    if read_checkpoint_state(path)["format"] == 2:
        return None
    file = Path(path) / SPACES_FILE
    spaces = ckpt.load_json(file)
    try:
        return space_from_json(spaces["observation_space"]), space_from_json(spaces["action_space"])
    except (KeyError, TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"checkpoint file {file} is corrupt ({type(e).__name__}: {e})") from None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mean_learner_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-module means of an iteration's learner results, for algorithms that update several times per iteration.

    `{}` when there were none (an off-policy algorithm before learning starts).
    """
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for result in results:
        for module_id, metrics in result.items():
            for key, value in metrics.items():
                sums[module_id][key] += value / len(results)
    return {module_id: dict(metrics) for module_id, metrics in sums.items()}

"""Callbacks a user would write, and an env whose infos they read (importable as `user_callbacks` with tests/ on
the path, by Ray's workers too: tests/conftest.py's fixtures put tests/ on theirs)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from corridor_env import CorridorEnv

from rlrun.callbacks import Callback

HOOKS_FILE = "hooks.jsonl"
STOP_AT_ITERATION = 3


class InfoCorridor(CorridorEnv):
    """The corridor, telling in its infos how far the agent got and whether it reached the goal."""

    def step(self, action: Any):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, {"position": self._pos, "success": bool(terminated)}


class SuccessRate(Callback):
    """Episode end: the share of episodes that reached the goal and how far they got, from the env's infos;
    every episode step counted (a sum), to check the step hook against the env steps sampled."""

    def on_episode_step(self, *, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("steps", 1, reduce="sum")

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("success", float(episode.infos["success"]))
        metrics_logger.log_value("position_max", episode.infos["position"], reduce="max")


class StopAfterIterations(Callback):
    """Ends the run at iteration STOP_AT_ITERATION, and logs a driver-side metric every iteration."""

    def on_train_result(self, *, algorithm, result, metrics_logger, **kwargs) -> str | None:
        metrics_logger.log_value("driver/iteration_squared", result["training_iteration"] ** 2)
        if result["training_iteration"] >= STOP_AT_ITERATION:
            return f"{STOP_AT_ITERATION} iterations are enough"
        return None


class HookLog(Callback):
    """Writes every driver hook it gets, in order, to <run>/hooks.jsonl."""

    def on_run_start(self, *, run_dir, **kwargs) -> None:
        self.path = Path(run_dir) / HOOKS_FILE

    def _write(self, hook: str, **data: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"hook": hook, **data}) + "\n")

    def on_algorithm_init(self, *, algorithm, **kwargs) -> None:
        self._write("on_algorithm_init", iteration=algorithm.iteration)

    def on_evaluate_end(self, *, algorithm, result, **kwargs) -> None:
        self._write("on_evaluate_end", iteration=algorithm.iteration,
                    episode_return_mean=result["evaluation"]["episode_return_mean"])

    def on_checkpoint_saved(self, *, algorithm, path, **kwargs) -> None:
        self._write("on_checkpoint_saved", iteration=algorithm.iteration, path=str(path),
                    complete=(Path(path) / "algorithm_state.json").is_file())

    def on_run_end(self, *, error, **kwargs) -> None:
        self._write("on_run_end", error=None if error is None else type(error).__name__)


class WorkerMix(Callback):
    """Episode end: which runner finished it, under every reduction, to check how runners' values combine."""

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        worker = episode.worker_index
        metrics_logger.log_value("worker_mean", worker)
        metrics_logger.log_value("worker_min", worker, reduce="min")
        metrics_logger.log_value("worker_max", worker, reduce="max")
        metrics_logger.log_value("episodes", 1, reduce="sum")
        metrics_logger.log_value(f"episodes_of_{worker}", 1, reduce="sum")


class NotACallback:
    def on_episode_end(self, **kwargs) -> None:
        pass


class PositionalEpisodeEnd(Callback):
    """RLlib's old positional signature: rlrun passes keyword arguments only."""

    def on_episode_end(self, episode) -> None:  # type: ignore[override]
        pass


class EpisodeCounter(Callback):
    """Counts every episode hook call (sums), to check each hook fires once per start, env step and end."""

    def on_episode_start(self, *, episode, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("starts", 1, reduce="sum")
        metrics_logger.log_value("start_len_max", episode.length, reduce="max")

    def on_episode_step(self, *, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("steps", 1, reduce="sum")

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        metrics_logger.log_value("ends", 1, reduce="sum")
        metrics_logger.log_value("end_return", episode.episode_return)


class FillDiskAfterFirstCheckpoint(Callback):
    """Fills the run directory's file system once the first periodic checkpoint is saved, all but FILL_SLACK bytes:
    room for the metrics rows of the next iterations, none for another checkpoint. A disk that fills during a run,
    once: a run resumed after the user freed the space (removed `filler`) finds `filled` and goes on."""

    FILL_SLACK = 48 * 1024

    def on_checkpoint_saved(self, *, path: Path, **kwargs: Any) -> None:
        run_dir = path.parent.parent
        if not path.name.startswith("checkpoint_") or (run_dir / "filled").exists():
            return
        (run_dir / "filled").touch()
        filler = run_dir / "filler"
        stat = os.statvfs(path)
        size = stat.f_bavail * stat.f_frsize - self.FILL_SLACK
        with open(filler, "wb") as f:
            f.write(bytes(size))


def learner_pids(algorithm: Any) -> list[int]:
    """The process ids of a run's learner actors, by rank (asked of each actor)."""
    import ray

    return ray.get([actor.__ray_call__.remote(lambda self: os.getpid())
                    for actor in algorithm.learner_group._learner._actors])


class KillLearnerAfterIteration2(Callback):
    """SIGKILLs learner actor 0's process once iteration 2's results are in: a learner that dies mid-run."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        if result["training_iteration"] == 2:
            os.kill(learner_pids(algorithm)[0], signal.SIGKILL)

"""The `Callback` base class: RLlib's hook names, called where the thing they are named after happens.

Env-runner hooks (`on_episode_*`) run in the env runner's process: the driver in embedded mode, each Ray
actor otherwise, where every runner builds its own instances from the class names in its spec
(`EnvRunnerSpec.callbacks`), so a callback never has to pickle. Driver hooks run in the process that writes
the run directory. A hook that a class does not override costs nothing: runners look up once which hooks
are overridden (`overrides`) and call only those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlrun.callbacks.metrics import MetricsLogger

# The keyword arguments rlrun passes to each hook; a user's hook must accept them (or take **kwargs).
HOOK_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "on_episode_start": ("episode", "env_runner", "metrics_logger"),
    "on_episode_step": ("episode", "env_runner", "metrics_logger"),
    "on_episode_end": ("episode", "env_runner", "metrics_logger"),
    "on_algorithm_init": ("algorithm",),
    "on_train_result": ("algorithm", "result", "metrics_logger"),
    "on_checkpoint_saved": ("algorithm", "path"),
    "on_evaluate_end": ("algorithm", "result"),
    "on_run_start": ("run_dir", "params"),
    "on_run_end": ("error",),
}
EPISODE_HOOKS = ("on_episode_start", "on_episode_step", "on_episode_end")


@dataclass
class Episode:
    """One env copy's episode as an episode hook sees it, right after the step (or reset) that the hook is for.

    `infos` is the env's info dict of that step for this copy alone; it is taken out of the vector env's
    batched infos only when a hook reads it. Multi-agent runners pass dicts by agent id for `last_obs`,
    `last_action`, `last_reward` and `infos`, and the sum over agents as `episode_return`.
    """

    env_index: int
    length: int
    episode_return: float
    last_obs: Any
    last_action: Any = None
    last_reward: Any = None
    worker_index: int = 0
    _infos: Callable[[], dict[str, Any]] = field(default=dict, repr=False)

    @property
    def infos(self) -> dict[str, Any]:
        return self._infos()


class Callback:
    """Subclass it and override the hooks you need; every hook takes keyword arguments only.

    Accept `**kwargs` besides the arguments you use, as RLlib's callbacks do, so later arguments do not break
    your class. `on_train_result` may return a reason (a string, or True) to end the run after this
    iteration: the run then evaluates, writes its final checkpoint and records the reason.
    """

    # A callback whose hook raises ends the run; a best-effort one (the trackers) is dropped with a warning.
    best_effort: bool = False

    # -- env runners ---------------------------------------------------------------------------------------------

    def on_episode_start(self, *, episode: Episode, env_runner: Any, metrics_logger: MetricsLogger,
                         **kwargs: Any) -> None:
        """An episode has started (reset): `episode.last_obs` is its first observation, length and return 0."""

    def on_episode_step(self, *, episode: Episode, env_runner: Any, metrics_logger: MetricsLogger,
                        **kwargs: Any) -> None:
        """The env copy took a step of the episode (the last one too, before `on_episode_end`)."""

    def on_episode_end(self, *, episode: Episode, env_runner: Any, metrics_logger: MetricsLogger,
                       **kwargs: Any) -> None:
        """The episode terminated or was truncated; `episode.infos` are the env's infos of its last step."""

    # -- driver --------------------------------------------------------------------------------------------------

    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        """The algorithm is built (and restored, when the run resumes); nothing has trained yet."""

    def on_train_result(self, *, algorithm: Any, result: dict[str, Any], metrics_logger: MetricsLogger,
                        **kwargs: Any) -> str | bool | None:
        """An iteration's flat result row (metrics.jsonl's keys), before it is written: add to it, or log through
        `metrics_logger` (driver side: the key as given); return a reason to stop the run."""
        return None

    def on_checkpoint_saved(self, *, algorithm: Any, path: Path, **kwargs: Any) -> None:
        """A checkpoint directory (periodic, best or final) is complete at `path`."""

    def on_evaluate_end(self, *, algorithm: Any, result: dict[str, Any], **kwargs: Any) -> None:
        """An evaluation finished; `result` is `{"evaluation": {...}}` and may be added to."""

    # -- the run's records (TensorBoard, MLflow, W&B and a tracker of your own) -----------------------------------

    def on_run_start(self, *, run_dir: Path, params: dict[str, Any], **kwargs: Any) -> str | None:
        """Before anything is written: `params` is the run's config flattened to dotted keys. Returns a line for
        the console (where the run is tracked), or None."""
        return None

    def on_run_end(self, *, error: BaseException | None, **kwargs: Any) -> None:
        """After the final checkpoint and the learning curve; `error` ended the run, None if a stop criterion did."""


def overrides(callback: Callback, hook: str) -> bool:
    """Whether `callback`'s class defines `hook` itself, instead of inheriting the base class's no-op."""
    return getattr(type(callback), hook) is not getattr(Callback, hook)

"""`rlrun.train(...)`: a whole run from a notebook or a script, exactly as the `rlrun` command makes it.

The overrides are the command line's (`"algo=ppo"`, `"env=cartpole"`, `"stop.timesteps=2000"`); keyword
arguments are the same overrides written as Python values (`stop={"timesteps": 2000}`, `seed=1`). Hydra composes
them from the same config and runs the same job (`run_experiment`), so the run directory holds what a CLI run
writes: `.hydra/config.yaml`, metrics.jsonl, TensorBoard events, checkpoints, the learning curve, the log; and
`rlrun-eval`, `resume=` and `rlrun.load` take it as they take a CLI run's. A config mistake raises the CLI's
one-line `ConfigError` (and leaves no directory behind) instead of exiting the interpreter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rlrun.config.errors import ConfigError
from rlrun.core.checkpointing import CheckpointError

# Strings Hydra's override grammar reads as they are (no quotes): what paths and `pkg.module:Class` are made of.
_PLAIN = re.compile(r"[\w./:@+~-]+")
# Mistakes whose message says all, raised as they are (the CLI prints them as its one `rlrun: error:` line).
USER_ERRORS = (ConfigError, CheckpointError)


@dataclass(frozen=True)
class RunResult:
    """What a finished run left: its directory, its last metrics row and its checkpoints."""

    run_dir: Path
    # The last row of metrics.jsonl (flat keys: "env_runners/episode_return_mean", "evaluation/...", ...).
    metrics: dict[str, Any]
    # The final greedy evaluation's mean return (the CLI's sweep objective); None if the run did not evaluate.
    eval_return: float | None
    final_checkpoint: Path
    # The checkpoint of the best evaluation so far (what rlrun-eval and rlrun.load pick for the run directory).
    best_checkpoint: Path | None


def train(*overrides: str | Iterable[str], **values: Any) -> RunResult:
    """Run rlrun with command-line overrides and/or keyword values; returns the finished run's `RunResult`.

    `train("algo=ppo", "env=cartpole", stop={"timesteps": 2000})` is `rlrun algo=ppo env=cartpole
    stop.timesteps=2000`; a list of override strings may stand in for the positional ones. Keyword values
    that are mappings become dotted keys; lists and scalars are written as Hydra reads them.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rlrun.algorithms.registry import algorithm_schemas
    from rlrun.cli import one_line
    from rlrun.cli_dirs import remove_new_dirs
    from rlrun.config.keys import free_form_overrides
    from rlrun.config.schema import register_schemas
    from rlrun.run.resume import resume_argv

    args = [*_flatten_positional(overrides), *keyword_overrides(values)]
    if not any(arg.lstrip("+").startswith(("hydra.run.dir=", "resume=")) for arg in args):  # resume: the run's own
        args.append(f"hydra.run.dir={fresh_run_dir()}")
    register_schemas(algorithm_schemas())
    GlobalHydra.instance().clear()
    try:
        argv = free_form_overrides(resume_argv(args))
        with initialize_config_module(config_module="rlrun.conf", version_base="1.3", job_name="rlrun"):
            job = GlobalHydra.instance().hydra.run(config_name="config", task_function=_run_job, overrides=argv)
        if isinstance(job.return_value, USER_ERRORS):
            raise job.return_value
    except USER_ERRORS:
        remove_new_dirs()
        raise
    except (HydraException, OmegaConfBaseException) as e:  # a bad override: the CLI's one line, as a ConfigError
        remove_new_dirs()
        raise ConfigError(one_line(e)) from None
    return run_result(Path(job.hydra_cfg.hydra.runtime.output_dir))


def fresh_run_dir(now: datetime | None = None) -> Path:
    """The CLI's `outputs/<date>/<time>`, with `_1`, `_2`, ... when a run of this second has it already: calls from one
    script come faster than the CLI's, and two runs must never share a directory."""
    base = Path("outputs") / (now or datetime.now()).strftime("%Y-%m-%d/%H-%M-%S")
    candidate, n = base, 0
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}_{n}")
    return candidate


def _run_job(cfg: Any) -> float | Exception | None:
    """The job Hydra runs in the run directory it made: the CLI's `run_experiment`. A user's mistake is returned,
    for `train` to raise once the job is over: raised here, Hydra would print an "Error executing job" line."""
    from hydra.core.hydra_config import HydraConfig

    from rlrun.run.job import run_experiment

    try:
        return run_experiment(cfg, Path(HydraConfig.get().runtime.output_dir))
    except USER_ERRORS as e:
        return e


def _flatten_positional(overrides: tuple[str | Iterable[str], ...]) -> list[str]:
    """Positional overrides: strings, or lists of strings (one command line's worth)."""
    flat: list[str] = []
    for item in overrides:
        items = [item] if isinstance(item, str) else list(item)
        bad = [x for x in items if not isinstance(x, str) or "=" not in x]
        if bad:
            raise ConfigError(f"rlrun.train takes overrides as 'key=value' strings (or lists of them) and keyword "
                              f"values; got {bad[0]!r}")
        flat += items
    return flat


def keyword_overrides(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`stop={"timesteps": 2000}, seed=1` -> `["stop.timesteps=2000", "seed=1"]` (nested mappings dotted, values
    in Hydra's grammar: JSON for numbers, lists, booleans and null; a string as it is where the command line
    would take it so (a path, `pkg.module:Class`), else quoted, so that `,` or a space stay text)."""
    out: list[str] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += keyword_overrides(value, f"{name}.")
        elif isinstance(value, (str, Path)):
            text = str(value)
            out.append(f"{name}={text if _PLAIN.fullmatch(text) else json.dumps(text)}")
        else:
            out.append(f"{name}={json.dumps(value)}")
    return out


def run_result(run_dir: Path) -> RunResult:
    """The `RunResult` of a finished run directory."""
    from rlrun.run.checkpoints import BEST, CHECKPOINTS_DIR, FINAL
    from rlrun.run.plots import EVAL_RETURN_KEY
    from rlrun.run.recorder import read_metrics

    rows = read_metrics(run_dir)
    metrics = rows[-1] if rows else {}
    best = run_dir / CHECKPOINTS_DIR / BEST
    return RunResult(run_dir=run_dir, metrics=metrics, eval_return=metrics.get(EVAL_RETURN_KEY),
                     final_checkpoint=run_dir / CHECKPOINTS_DIR / FINAL,
                     best_checkpoint=best if best.is_dir() else None)

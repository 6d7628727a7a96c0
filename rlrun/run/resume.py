"""`rlrun resume=<run dir or checkpoint dir>`: continue a run in its own directory.

Hydra would compose the default config and create a new run directory. Instead,
`resume_argv` rewrites the command line before Hydra sees it: Hydra composes the
run's saved config (`.hydra/config.yaml`), then the new overrides, with
`hydra.run.dir` set to the run's directory and no new `.hydra/` written. The saved
config is the truth: the run's overrides may name presets from a `--config-dir` or
`hydra.searchpath` that has since moved or changed, so they are not composed again.
Only keys that do not change what is trained may be given anew -- `stop.*`,
`logger.*`, `checkpoint.*`, `evaluation.*` -- and `check_config_unchanged` makes
sure the result is the saved config apart from those.

`resume=<run dir>` continues from the newest checkpoint whose files all load; the
newer ones that do not are named in a warning, and moved to `corrupt_checkpoints/`
once the run goes on. A checkpoint named in `resume=` must load.

After the checkpoint is restored, `rewind_run_dir` makes the directory look as
if the run had stopped right after that checkpoint: metrics rows and checkpoints
of later iterations (written before a crash, or after an older checkpoint that
was asked for) and unfinished checkpoint writes are removed, so `metrics.jsonl`
continues with no gap and no duplicate iteration. `.hydra/` is updated with the
new overrides, so a later resume or `rlrun-eval` sees the config the run has now.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.algorithm import read_checkpoint_state
from rlrun.config.errors import ConfigError
from rlrun.config.keys import override_key, unknown_keys
from rlrun.core.checkpointing import CheckpointError, check_files, restore_interrupted_replacements
from rlrun.run.checkpoints import (
    CHECKPOINTS_DIR,
    RUN_CONFIG,
    check_checkpoint,
    checkpoint_dirs,
    locate,
    newest_intact_checkpoint,
    set_aside,
)
from rlrun.run.recorder import METRICS_FILE, flatten, read_metrics

SAFE_SECTIONS = ("stop", "logger", "checkpoint", "evaluation")
# Keys rlrun has removed that never changed what a run trains: a run saved with one still resumes.
# (`env.name` only repeated the env group's option, and went stale once `env.id` was set.)
RETIRED_KEYS = frozenset({"env.name"})
RUN_OVERRIDES = Path(".hydra") / "overrides.yaml"
_MULTIRUN_FLAGS = ("-m", "--multirun")
# Where rlrun.config.schema.register_schemas puts each config group's schemas in Hydra's ConfigStore
# (`schema/<group>/<name>`).
SCHEMA_GROUPS = "schema"
# What `compose_saved_config` stores: in each group an option that is the group's schema alone, and one
# `_global_` option holding the saved config, which `+rlrun_saved_run=config` merges over everything.
RESUMED_OPTION = "rlrun_resumed"
SAVED_RUN_GROUP = "rlrun_saved_run"
SAVED_RUN_OPTION = "config"
log = logging.getLogger("rlrun")


def resume_argv(argv: list[str]) -> list[str]:
    """The command line Hydra should see; `argv` itself when it does not contain `resume=`.

    Also puts the run's saved config into Hydra's ConfigStore (`compose_saved_config`), for
    the command line to select: call it in the process that then runs Hydra.
    """
    values = [arg.split("=", 1)[1] for arg in argv if override_key(arg) == "resume"]
    if not values:
        return argv
    if len(values) > 1:
        raise ConfigError(f"resume is given {len(values)} times; name one run or checkpoint directory")
    if any(arg in _MULTIRUN_FLAGS for arg in argv):
        raise ConfigError("resume continues one run; it cannot be combined with --multirun (-m)")
    run_dir, checkpoint = locate(Path(values[0]))
    # A crash while a checkpoint was being replaced left the previous one aside: it counts again.
    restore_interrupted_replacements(run_dir / CHECKPOINTS_DIR)
    # No checkpoint to continue from fails here, before Hydra starts; which ones are skipped is said in the run.
    checkpoint_to_resume(run_dir, checkpoint)
    flags = [arg for arg in argv if not _is_override(arg)]
    overrides = [arg for arg in argv if _is_override(arg) and override_key(arg) != "resume"]
    hydra_args = [arg for arg in overrides if override_key(arg).startswith(("hydra.", "hydra/"))]
    new = [arg for arg in overrides if arg not in hydra_args]
    unsafe = [override_key(arg) for arg in new if override_key(arg).split(".")[0] not in SAFE_SECTIONS]
    if unsafe:
        raise ConfigError(
            f"cannot change {', '.join(unsafe)} when resuming: a run continues with its own config; "
            f"only {', '.join(s + '.*' for s in SAFE_SECTIONS)} may change"
        )
    for arg in hydra_args:
        if override_key(arg) == "hydra.run.dir" and Path(arg.split("=", 1)[1]).expanduser().resolve() != run_dir:
            raise ConfigError(f"a resumed run continues in its own directory {run_dir}; drop {arg}")
    return [
        *flags,
        *compose_saved_config(run_dir, new),
        f"resume={_quote(checkpoint or run_dir)}",
        *(arg for arg in hydra_args if override_key(arg) != "hydra.run.dir"),
        f"hydra.run.dir={_quote(run_dir)}",
        "hydra.output_subdir=null",
        "hydra.mode=RUN",  # a sweep job's overrides may select a sweeper config that implies --multirun
    ]


def compose_saved_config(run_dir: Path, new: list[str]) -> list[str]:
    """Overrides that make Hydra compose the run's `.hydra/config.yaml`, then `new`; stores what they select.

    rlrun's primary config stays (its Hydra settings, the typed top-level schema). Each
    group the saved config has a section for selects an option that is that section's
    schema alone, so the values are typed and checked as in the run; the saved config is
    then merged over everything as one `_global_` option. No preset is looked up, so a run
    composed with `--config-dir` or `hydra.searchpath` resumes without them, and presets
    edited since do not change it. A group that `new` selects again (`logger=mlflow`) is
    composed from its preset and the run's overrides of it instead of the saved section.
    """
    saved = OmegaConf.load(run_dir / RUN_CONFIG)
    store = ConfigStore.instance()
    reselected = {override_key(arg) for arg in new} & set(store.list(SCHEMA_GROUPS))
    # As the run's section of a group selected again is not used, its overrides of that section apply again.
    own = [arg for arg in run_overrides(run_dir) if override_key(arg).split(".")[0] in reselected]
    # Keys rlrun has removed since the run: Hydra could not merge them into today's schemas, and without them
    # check_config_unchanged names the key the run had and this rlrun has not. Free-form mappings keep theirs.
    for key in unknown_keys(saved):
        parent, _, leaf = key.rpartition(".")
        del (OmegaConf.select(saved, parent) if parent else saved)[leaf]
    selections = []
    for group in store.list(SCHEMA_GROUPS):
        if group not in saved or group in reselected:
            saved.pop(group, None)
            continue
        schema = _schema_option(group, saved[group])
        defaults = [{f"/{SCHEMA_GROUPS}/{group}@_here_": schema}] if schema else []
        store.store(group=group, name=RESUMED_OPTION, node={"defaults": [*defaults, "_self_"]})
        selections.append(f"{group}={RESUMED_OPTION}")
    store.store(group=SAVED_RUN_GROUP, name=SAVED_RUN_OPTION, node=saved, package="_global_")
    return [*selections, f"+{SAVED_RUN_GROUP}={SAVED_RUN_OPTION}", *_merge_overrides(own, new)]


def _schema_option(group: str, section: Any) -> str | None:
    """The schema a saved group section was composed with: the group's only one, or (algo, logger) its `name`.

    A group with several schemas tells them apart by the section's `name` (`algo.name: dqn`;
    the default logger's `name` is not a schema's, so it has the group's own schema).
    """
    options = [name.removesuffix(".yaml") for name in ConfigStore.instance().list(f"{SCHEMA_GROUPS}/{group}")]
    name = section.get("name") if isinstance(section, DictConfig) else None
    if name in options:
        return name
    return group if group in options else None


def run_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides a run was started (or last resumed) with."""
    path = run_dir / RUN_OVERRIDES
    return [str(arg) for arg in yaml.safe_load(path.read_text()) or []] if path.is_file() else []


def checkpoint_to_resume(run_dir: Path, checkpoint: Path | None) -> tuple[Path, list[tuple[Path, CheckpointError]]]:
    """The checkpoint to restore, and the run's newer ones skipped as corrupt (with why).

    A checkpoint the user named must load (CheckpointError naming the file); for a run
    directory it is the newest checkpoint whose files all load.
    """
    if checkpoint is not None:
        check_checkpoint(checkpoint)
        return checkpoint, []
    return newest_intact_checkpoint(run_dir)


def resume_checkpoint(resume: str, run_dir: Path) -> Path:
    """The checkpoint `resume=` names: the given checkpoint, or the run's newest intact one (warning of any skipped)."""
    located_run, checkpoint = locate(Path(resume))
    if located_run != run_dir.resolve():
        raise ConfigError(f"resume={resume} belongs to run directory {located_run}, not {run_dir}")
    checkpoint, skipped = checkpoint_to_resume(located_run, checkpoint)
    for path, error in skipped:
        log.warning("skipping checkpoint %s, it cannot be resumed from: %s", path.name, error)
    return checkpoint


def check_config_unchanged(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse to resume unless everything but the safe sections resolves as in the saved config.

    Compared resolved, so this also catches a safe key that something else interpolates
    (`lr_schedule: [[0, 1e-3], ["${stop.timesteps}", 0]]`), and keys that rlrun added
    (with their defaults) or removed since the run started.
    """
    saved = flatten(OmegaConf.to_container(OmegaConf.load(run_dir / RUN_CONFIG), resolve=True), sep=".")
    now = flatten(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), sep=".")
    for key in sorted(saved.keys() | now.keys()):
        if key.split(".")[0] in (*SAFE_SECTIONS, "resume") or key in RETIRED_KEYS:
            continue
        before, after = saved.get(key, "<missing>"), now.get(key, "<missing>")
        if before != after:
            raise ConfigError(
                f"cannot resume {run_dir}: {key} would change from {before!r} to {after!r}; a run continues "
                f"with its own config, and only {', '.join(s + '.*' for s in SAFE_SECTIONS)} may change"
            )


def metrics_row(run_dir: Path, iteration: int) -> dict[str, Any] | None:
    """The metrics.jsonl row of one iteration, if it was written."""
    if not (run_dir / METRICS_FILE).is_file():
        return None
    return next((row for row in read_metrics(run_dir) if row.get("training_iteration") == iteration), None)


def rewind_run_dir(
    run_dir: Path, checkpoint: Path, iteration: int, cfg: DictConfig, overrides: list[str] | None
) -> None:
    """Drop what the run wrote after `checkpoint` (iteration `iteration`) and record the resumed config.

    Checkpoints of later iterations are deleted, but one that does not load is moved to
    `corrupt_checkpoints/` instead (`set_aside`), as is one of the same iteration: the run
    writes its next checkpoints where it was. `overrides` (the resumed command line's,
    from Hydra) are merged into `.hydra/overrides.yaml`; None keeps it.
    """
    if (run_dir / METRICS_FILE).is_file():
        rows = [row for row in read_metrics(run_dir) if row["training_iteration"] <= iteration]
        _write_atomically(run_dir / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in rows))
    for path in checkpoint_dirs(run_dir):
        if path == checkpoint:
            continue
        try:
            path_iteration = int(read_checkpoint_state(path)["iteration"])
            if path_iteration >= iteration:
                check_files(path)
        except CheckpointError as e:
            log.warning("moved checkpoint %s to %s: %s", path.name, set_aside(run_dir, path), e)
            continue
        if path_iteration > iteration:
            shutil.rmtree(path)
    for leftover in (run_dir / CHECKPOINTS_DIR).glob(".*"):
        if leftover != checkpoint:
            shutil.rmtree(leftover, ignore_errors=True)
    saved = cfg.copy()
    OmegaConf.update(saved, "resume", None)
    _write_atomically(run_dir / RUN_CONFIG, OmegaConf.to_yaml(saved))
    if overrides is not None:
        new = [arg for arg in overrides if override_key(arg) not in ("resume", SAVED_RUN_GROUP)
               and arg.split("=", 1)[-1] != RESUMED_OPTION]
        _write_atomically(run_dir / RUN_OVERRIDES, yaml.safe_dump(_merge_overrides(run_overrides(run_dir), new)))


def _merge_overrides(old: list[str], new: list[str]) -> list[str]:
    """`old` without the keys that `new` sets again, then `new`."""
    new_keys = {override_key(arg) for arg in new}
    return [arg for arg in old if override_key(arg) not in new_keys] + new


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _is_override(arg: str) -> bool:
    """`key=value`, `+key=value`, `~key`; not an option such as `--cfg` or its value."""
    return not arg.startswith("-") and ("=" in arg or arg.startswith("~"))


def _quote(path: Path) -> str:
    """A path as a quoted Hydra override value (spaces, commas and brackets stay literal)."""
    escaped = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"

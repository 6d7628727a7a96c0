"""`rlrun --help`: rlrun's own usage -- the config groups a user picks from, their keys, examples.

Hydra's page (still there as `rlrun --hydra-help`) lists its internal `schema/*` groups as if
they were choices. This page is built from the packaged group files (rlrun/conf/<group>/*.yaml)
and the typed schemas, so a new option or key shows up without editing it.
"""

from __future__ import annotations

import dataclasses
import textwrap
from importlib import resources
from importlib.abc import Traversable

from rlrun.config.schema import GROUP_SCHEMAS, LOGGER_SCHEMAS, RunSchema

# config.yaml selects it; not a user's choice.
_INTERNAL_GROUPS = {"hydra/job_logging"}
# Groups without a schema of their own: what picking an option does.
_GROUP_NOTES = {
    "experiment": "a tuned preset (none by default)",
    "hparams_search": "a study: Optuna, or Ray Tune with ASHA / PBT (implies -m)",
    "hydra/launcher": "sweep jobs run concurrently, one process each (hydra/launcher=ray: Ray tasks)",
}
_WIDTH = 100
_KEY_COLUMN = 34

USAGE = """\
usage: rlrun [group=option ...] [key=value ...]   one run, in outputs/<date>/<time>/
       rlrun -m key=a,b [key=value ...]           a sweep: one job per combination, in multirun/
       rlrun resume=<run dir> [stop.key=value]    go on training a run, in its own directory"""

EXAMPLES = """\
examples:
  rlrun                                            PPO on CartPole-v1, defaults
  rlrun env=pendulum algo.lr=1e-3                  pick a group option, override a key
  rlrun experiment=cartpole_ppo_fast seed=3        a tuned preset
  rlrun -m seed=0,1,2 algo.lr=1e-3,3e-4            6 jobs
  rlrun env_runners.num=2 learners.num=2           Ray: 2 EnvRunner actors, 2 DDP learners

  rlrun --cfg job [key=value ...]                  print the full config (every key, its value) and exit
  rlrun --hydra-help                               Hydra's own flags
  rlrun-eval --help, rlrun-report --help           evaluate a checkpoint, compare runs"""


def rlrun_help() -> str:
    """The whole `rlrun --help` page."""
    from rlrun.algorithms.registry import algorithm_schemas

    algorithms = algorithm_schemas()
    lines = [USAGE, "", "config groups (pick one option each; set a key as group.key=value):"]
    for group, options in _user_groups():
        if group == "algo":  # each algorithm has keys of its own
            lines += [_row(f"algo={name}", _keys(algorithms[name])) for name in options if name in algorithms]
        elif group in GROUP_SCHEMAS:
            lines.append(_row(f"{group}={'|'.join(options)}", _keys(GROUP_SCHEMAS[group])))
            if group == "logger":  # each tracker adds keys of its own
                lines += [_row(f"logger={name}", "adds " + _keys(schema, beside=GROUP_SCHEMAS[group]))
                          for name, schema in LOGGER_SCHEMAS.items() if name in options]
        else:
            lines.append(_row(f"{group}={'|'.join(options)}", _GROUP_NOTES.get(group, "")))
    lines += ["", *textwrap.wrap("top-level keys: " + ", ".join(_top_level_keys()), _WIDTH, subsequent_indent="  ")]
    return "\n".join([*lines, "", EXAMPLES])


def _keys(schema: type, beside: type | None = None) -> str:
    """The schema's keys (without `name`), or only those it adds to `beside`."""
    known = {f.name for f in dataclasses.fields(beside)} if beside else {"name"}
    return ", ".join(f.name for f in dataclasses.fields(schema) if f.name not in known)


def _row(name: str, text: str) -> str:
    """`  name   text`, the text wrapped in its own column."""
    indent = " " * _KEY_COLUMN
    head = f"  {name}"
    head = head.ljust(_KEY_COLUMN) if len(head) < _KEY_COLUMN else f"{head}\n{indent}"
    return head + f"\n{indent}".join(textwrap.wrap(text, _WIDTH - _KEY_COLUMN))


def _user_groups() -> list[tuple[str, list[str]]]:
    """Every `group=option` choice in the package: folders of rlrun/conf holding YAML files."""
    found: list[tuple[str, list[str]]] = []

    def walk(folder: Traversable, group: str) -> None:
        options = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
        if group and options and group not in _INTERNAL_GROUPS:
            found.append((group, options))
        for sub in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name):
            if not sub.name.startswith("__"):
                walk(sub, f"{group}/{sub.name}" if group else sub.name)

    walk(resources.files("rlrun.conf"), "")
    return found


def _top_level_keys() -> list[str]:
    """The keys beside the groups (`seed`, `stop.timesteps`, ...), from RunSchema."""
    groups = {group for group, _ in _user_groups()}
    keys: list[str] = []
    for f in dataclasses.fields(RunSchema):
        if f.name in groups:
            continue
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
            keys += [f"{f.name}.{sub.name}" for sub in dataclasses.fields(f.default_factory)]
        else:
            keys.append(f.name)
    return keys

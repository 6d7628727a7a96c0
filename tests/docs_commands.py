"""What the docs' code blocks are, and how a test checks each without training.

The README and every page under docs/ show commands in ```bash blocks, example output and errors in ```text
blocks, code in ```python and configs in ```yaml. `check_command` takes one bash line and checks it the way the
program it names would before doing any work:

- `rlrun ...` (also `python -m rlrun`): rlrun's own flag checks, `resume=` against a real run, then Hydra composes
  every job of the command (a `-m` sweep is expanded) and each job passes every check a run makes before it starts
  (`validated_algorithm_config`: known keys, ranges, the env built and its spaces checked);
- `rlrun-eval` / `rlrun-report`: their own argument parsers;
- `make <target>`: a target of the Makefile; `pip install '.[extra]'`: extras of pyproject.toml;
- anything else must be one of OTHER_PROGRAMS, which a reader runs as documented elsewhere (Ray's, Git's).

A run directory is written `$RUN` and a sweep directory `$SWEEP` in the docs; the caller says what they stand for
(a page's own `RUN=outputs/baseline` line is allowed and left to the caller's value).
"""

from __future__ import annotations

import itertools
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tomllib

if TYPE_CHECKING:
    from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
OTHER_PROGRAMS = {"pip", "git", "cd", "ray", "tensorboard", "mlflow", "wandb", "export", "mkdir", "ls", "cat", "ssh",
                  "python3.11", "source", ".", "nvidia-smi", "sbatch", "docker"}
_BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page: its language tag, its text and the line it starts on."""

    lang: str
    text: str
    line: int


def blocks(page: Path, lang: str | None = None) -> list[Block]:
    text = page.read_text()
    found = [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _BLOCK.finditer(text)]
    return [b for b in found if lang is None or b.lang == lang]


def commands(block: Block) -> Iterator[str]:
    """The block's commands: `\\`-continued lines joined, comments and blank lines dropped."""
    for line in block.text.replace("\\\n", " ").splitlines():
        line = _strip_comment(line).strip()
        if line:
            yield line


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` outside quotes, at the start or after a space)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: leave it whole, the command check reports it
        return line
    return shlex.join(words) if words else ""


def argv_of(command: str, substitutions: dict[str, str]) -> list[str]:
    """The command's words after `$RUN`-style substitutions, without leading `VAR=value` assignments."""
    for name, value in substitutions.items():
        command = command.replace(f"${name}", value)
    words = shlex.split(command)
    while words and _ENV_ASSIGNMENT.match(words[0]) and len(words) > 1:
        words = words[1:]
    return words


def check_command(command: str, substitutions: dict[str, str]) -> None:
    """Raise (AssertionError or rlrun's own error) unless the command is one a reader can run as shown."""
    argv = argv_of(command, substitutions)
    if len(argv) == 1 and _ENV_ASSIGNMENT.match(argv[0]):  # `RUN=outputs/baseline`: the test keeps its own $RUN
        return
    program, args = argv[0], argv[1:]
    if program == "python" and args[:2] == ["-m", "rlrun"]:
        program, args = "rlrun", args[2:]
    if program == "rlrun":
        compose_jobs(args)
    elif program == "rlrun-eval":
        from rlrun.cli_eval import parse_args

        if args != ["--help"]:
            parse_args(args)
    elif program == "rlrun-report":
        from rlrun.report.cli import _parser

        if args != ["--help"]:
            _parser().parse_args(args)
    elif program == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
        assert set(args) <= targets, f"make {args}: not a target of the Makefile ({sorted(targets)})"
    elif program == "python" and args and args[0].endswith(".py"):
        assert (ROOT / args[0]).is_file(), f"no script {args[0]}"
    elif program == "pip" and "install" in args:
        _check_extras(args)
    else:
        assert program in OTHER_PROGRAMS, f"{program}: not a command the docs tests know how to check"


def _check_extras(args: list[str]) -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for arg in args:
        named = re.match(r"^(?:-e\s*)?\.\[([\w,-]+)\]$", arg)
        if named:
            unknown = set(named.group(1).split(",")) - extras
            assert not unknown, f"pip install {arg}: no extras {sorted(unknown)} in pyproject.toml"


def compose_jobs(args: list[str]) -> list:
    """Every job config of `rlrun <args>`, each composed and checked as the CLI would before training."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rlrun.algorithms.from_config import validated_algorithm_config
    from rlrun.algorithms.registry import algorithm_schemas
    from rlrun.cli import _check_flags
    from rlrun.config.keys import free_form_overrides
    from rlrun.config.schema import register_schemas, registered_algorithm_schemas
    from rlrun.run.resume import RESUMED_OPTION, resume_argv

    old_argv = sys.argv
    sys.argv = ["rlrun", *args]  # rlrun.cli reads `algo=` from it to name an unknown key's siblings
    # `resume=` stores the run's saved config as an option of each group: a process of its own in the CLI, so
    # here it must not outlive the command (other commands' errors would list it among the group's options).
    store = ConfigStore.instance()
    # As rlrun.cli does first: the key checks below read the algorithms' schemas. Once in this process: they stay
    # (compose_config and validated_algorithm_config register them again anyway, ~0.07 s each).
    try:
        registered_algorithm_schemas()
    except RuntimeError:
        register_schemas(algorithm_schemas())
    try:
        if "--help" in args or "-h" in args or "--hydra-help" in args:
            return []
        _check_flags(args)
        argv = free_form_overrides(resume_argv(args))
        overrides, search_path = _split_flags(argv)
        parsed = OverridesParser.create().parse_overrides(overrides)
        choices = [[o.input_line] if not o.is_sweep_override() else
                   [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in parsed]
        jobs = []
        for job in itertools.product(*choices):
            cfg = _compose(list(job), search_path, resumed=any(RESUMED_OPTION in o for o in job))
            validated_algorithm_config(cfg)
            jobs.append(cfg)
        return jobs
    finally:
        sys.argv = old_argv
        for group in store.repo.values():
            if isinstance(group, dict):
                group.pop(f"{RESUMED_OPTION}.yaml", None)


# The options of these config groups (and `hydra/...`, `hydra.*`) select which files Hydra composes; every other
# override sets a value of the composed config.
_GROUPS = {p.name for p in (ROOT / "rlrun" / "conf").iterdir() if p.is_dir() and not p.name.startswith("_")}


def _compose(job: list[str], search_path: list[str], *, resumed: bool) -> DictConfig:
    """The job's config, as `compose_config([*job, *search_path])` returns it.

    Hydra composes the files a job's group options select (~0.4 s), then applies its value overrides in order.
    The docs' commands and a sweep's jobs mostly differ only in values (`seed=0,1,2 algo.lr=1e-3,3e-4` on one
    preset), so the selected files are composed once and each job's values applied to a copy, by
    `rlrun.tune.compose.trial_config`, which Tune's trials rely on for the same equivalence: it composes the
    whole job instead whenever an override is not a plain value of the base (an unknown key, a `+`/`~`, a value
    its key's type refuses), so such a job fails with Hydra's own message. A `--config-dir` (a page's preset,
    rewritten by the next page) or a resumed run's saved config (dropped after its command) is always composed
    afresh.
    """
    from rlrun.tune.compose import compose_config, trial_config

    if search_path or resumed:
        return compose_config([*job, *search_path])
    selects = [o for o in job if "=" not in o or _in_base(*o.split("=", 1))]
    values = dict(o.split("=", 1) for o in job if o not in selects)
    if len(values) != len(job) - len(selects):  # a key set twice: Hydra's own order decides
        return compose_config(job)
    return trial_config(selects, values)


def _in_base(key: str, value: str) -> bool:
    """Composed with the base: what selects files, and what `trial_config` would compose afresh anyway (an added
    or deleted key, a list or mapping value) rather than pay for a base it then throws away."""
    return (key in _GROUPS or key.startswith(("+", "~", "hydra.")) or "/" in key or "@" in key
            or value.lstrip().startswith(("[", "{")))


def _split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Overrides, and a `hydra.searchpath` override for `--config-dir DIR`; the other flags (-m, --cfg job,
    --resolve) change what the CLI does with the config, not the config."""
    overrides, search_path, words = [], [], iter(argv)
    for word in words:
        if word in ("--config-dir", "-cd"):
            search_path = [f"hydra.searchpath=[file://{Path(next(words)).resolve()}]"]
        elif word.startswith("--config-dir="):
            search_path = [f"hydra.searchpath=[file://{Path(word.split('=', 1)[1]).resolve()}]"]
        elif word == "--cfg":
            next(words)
        elif not word.startswith("-"):
            overrides.append(word)
    return overrides, search_path

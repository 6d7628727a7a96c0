"""Find run directories, load what the report needs from them, and group them into configs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlrun.run.recorder import METRICS_FILE, read_metrics

# Overrides that say how a run is seeded, logged, checkpointed or where it runs, not what it
# learns: runs that differ only in these are seeds of one config.
NOT_EXPERIMENT = frozenset({"seed", "hydra", "logger", "checkpoint", "ray"})


class ReportError(Exception):
    """Bad input; the CLI reports it as one line and exits with status 2."""


@dataclass(frozen=True)
class Run:
    """One run directory: its iterations, and its Hydra config/overrides when it has them."""

    path: Path
    rows: list[dict[str, Any]]
    config: dict[str, Any] | None
    overrides: list[str] | None

    @property
    def seed(self) -> Any:
        return None if self.config is None else self.config.get("seed")

    @property
    def experiment_overrides(self) -> list[str] | None:
        """The overrides that change the experiment, in the order they were given."""
        if self.overrides is None:
            return None
        return [o for o in self.overrides if _override_root(o) not in NOT_EXPERIMENT]


@dataclass(frozen=True)
class ConfigGroup:
    """The runs of one config (its seeds), with the label shown in tables and legends."""

    label: str
    runs: list[Run]


def _override_root(override: str) -> str:
    """`+algo.lr=1e-3` -> `algo`, `hydra/launcher=x` -> `hydra`, `~seed` -> `seed`."""
    key = override.split("=", 1)[0].lstrip("+~")
    return re.split(r"[./]", key, maxsplit=1)[0]


def _natural_key(path: Path) -> list[tuple[int, int, str]]:
    """Multirun job dirs sort as 0, 1, ..., 10, not 0, 1, 10, 2."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts]


def discover_runs(dirs: list[str]) -> list[Path]:
    """Every directory holding a metrics.jsonl under the given ones (each found once, in natural order)."""
    found: dict[Path, Path] = {}
    for name in dirs:
        root = Path(name)
        if not root.exists():
            raise ReportError(f"no such directory: {name}")
        if not root.is_dir():
            raise ReportError(f"not a directory: {name}")
        metrics = [m for m in root.rglob(METRICS_FILE) if m.is_file()]
        if not metrics:
            raise ReportError(f"no {METRICS_FILE} under {name}")
        for m in sorted(metrics, key=lambda m: _natural_key(m.relative_to(root))):
            found.setdefault(m.parent.resolve(), m.parent)
    return list(found.values())


def _read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt metrics.jsonl or Hydra file is a ReportError."""
    metrics = path / METRICS_FILE
    try:
        rows = read_metrics(path)
        num_lines = len(metrics.read_text().splitlines())
        config = _read_yaml(path / ".hydra" / "config.yaml")
        overrides = _read_yaml(path / ".hydra" / "overrides.yaml")
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ReportError(f"cannot read {path}: {' '.join(str(e).split())}") from e
    # read_metrics drops a torn last line (a run still writing, or killed mid-write); a bad line before it is damage.
    if len(rows) < num_lines - 1:
        raise ReportError(f"{metrics}: line {len(rows) + 1} is not valid JSON")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ReportError(f"{metrics}: line {number} is not a JSON object")
    if not rows:
        raise ReportError(f"{metrics}: no iterations recorded")
    if config is not None and not isinstance(config, dict):
        raise ReportError(f"{path / '.hydra' / 'config.yaml'}: not a mapping")
    if overrides is not None and not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        raise ReportError(f"{path / '.hydra' / 'overrides.yaml'}: not a list of overrides")
    return Run(path=path, rows=rows, config=config, overrides=overrides)


def common_overrides(runs: list[Run]) -> list[str]:
    """Experiment overrides shared by every Hydra run: said once in the report instead of in every label."""
    hydra_runs = [r.experiment_overrides for r in runs if r.experiment_overrides is not None]
    if not hydra_runs:
        return []
    return [o for o in hydra_runs[0] if all(o in other for other in hydra_runs[1:])]


def group_runs(runs: list[Run]) -> list[ConfigGroup]:
    """Runs with the same experiment overrides are seeds of one config; runs without `.hydra/` go by directory name.

    A label names what sets its config apart from the others (the overrides not common to all
    runs); configs appear in the order their first run was found.
    """
    groups: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        overrides = run.experiment_overrides
        key = ("dir:", run.path.name) if overrides is None else ("overrides:", *sorted(overrides))
        groups.setdefault(key, []).append(run)
    common = common_overrides(runs)
    result = []
    for members in groups.values():
        overrides = members[0].experiment_overrides
        if overrides is None:
            label = members[0].path.name
        else:
            label = " ".join([o for o in overrides if o not in common] or overrides) or "(defaults)"
        result.append(ConfigGroup(label=label, runs=members))
    return result

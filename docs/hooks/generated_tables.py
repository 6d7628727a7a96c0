"""MkDocs hook: expand the generated-table markers of a page before it is rendered.

- `<!-- rlrun:keys <section> -->`: the section's keys from its typed schema (rlrun.config.reference), e.g.
  `algo=ppo`, `env_runners`, `stop`, `logger=mlflow`.
- `<!-- rlrun:presets algo=<name> -->`: the rows of docs/benchmarks.md for the presets that pick that algorithm,
  under the same header, so an algorithm page shows its measured presets without a second copy of them.

A marker that names no section or algorithm fails the build: the page would otherwise silently lose its table.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.config.reference import keys_table
from rlrun.config.schema import register_schemas

_MARKER = re.compile(r"^<!-- rlrun:(keys|presets) ([\w=.]+) -->$", re.MULTILINE)
_ROOT = Path(__file__).resolve().parents[2]
_PRESETS = _ROOT / "rlrun" / "conf" / "experiment"
_BENCHMARKS = _ROOT / "docs" / "benchmarks.md"


def on_config(config, **_):  # noqa: ANN001, ANN201 -- MkDocs' config
    """The key tables read the algorithms' schemas from the config package's registry."""
    register_schemas(algorithm_schemas())
    return config


def on_page_markdown(markdown: str, page, **_) -> str:  # noqa: ANN001 -- MkDocs' Page
    return _MARKER.sub(lambda m: _expand(m.group(1), m.group(2), page.file.src_uri), markdown)


def _expand(kind: str, argument: str, page: str) -> str:
    if kind == "keys":
        return keys_table(argument)
    return presets_table(argument.removeprefix("algo="), page)


def preset_algorithm(preset: Path) -> str | None:
    """The `override /algo: <name>` of a preset's defaults list."""
    for entry in yaml.safe_load(preset.read_text()).get("defaults", []):
        if isinstance(entry, dict) and "override /algo" in entry:
            return entry["override /algo"]
    return None


def presets_table(algorithm: str, page: str) -> str:
    """docs/benchmarks.md's header and the rows of `algorithm`'s presets, links made relative to `page`."""
    presets = sorted(p.stem for p in _PRESETS.glob("*.yaml") if preset_algorithm(p) == algorithm)
    if not presets:
        raise ValueError(f"{page}: no preset under rlrun/conf/experiment/ picks algo={algorithm}")
    lines = _BENCHMARKS.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| preset |"))
    rows = [line for line in lines if any(line.startswith(f"| `{p}` |") for p in presets)]
    depth = page.count("/")
    table = "\n".join(lines[header:header + 2] + rows)
    # benchmarks.md links its curves as benchmarks/<preset>.png, relative to docs/.
    return table.replace("](benchmarks/", f"]({'../' * depth}benchmarks/")

"""The Python code in docs/*.md runs as written: each page's ```python blocks, in order, in one namespace.

A page's examples are its promise to a reader; running them (in a temporary directory, so the
checkpoints they write go nowhere) keeps the docs and the API from drifting apart. The names the
reference page lists are checked to exist.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# `rlrun.module.path:Name` or `rlrun.module.path.Name` in backquotes, as api.md writes its imports.
_QUALIFIED_NAME = re.compile(r"`(rlrun(?:\.\w+)+)(?::(\w+))?`")


def python_blocks(page: Path) -> list[str]:
    return _PYTHON_BLOCK.findall(page.read_text())


def test_docs_have_code_to_run():
    assert {"api.md", "walkthrough.md"} <= {p.name for p in PAGES}
    assert python_blocks(DOCS / "walkthrough.md")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), start=1):
        code = compile(block, f"{page.name} block {number}", "exec")
        exec(code, namespace)  # noqa: S102 -- the docs' own examples, run as a reader would


def test_names_in_the_api_reference_exist():
    """Every `rlrun.x.y` / `rlrun.x.y:Name` api.md mentions can be imported."""
    names = _QUALIFIED_NAME.findall((DOCS / "api.md").read_text())
    assert names
    for dotted, attr in names:
        if attr:
            assert hasattr(importlib.import_module(dotted), attr), f"{dotted}:{attr}"
            continue
        try:
            importlib.import_module(dotted)
        except ModuleNotFoundError:  # `rlrun.pkg.Name`: a class or function of a module
            module, _, name = dotted.rpartition(".")
            assert hasattr(importlib.import_module(module), name), dotted


def test_every_preset_has_a_benchmark_row():
    """docs/benchmarks.md measures every preset shipped under rlrun/conf/experiment/ (scripts/bench_presets.py)."""
    presets = {p.stem for p in (DOCS.parent / "rlrun" / "conf" / "experiment").glob("*.yaml")}
    rows = set(re.findall(r"^\| `(\w+)` \|", (DOCS / "benchmarks.md").read_text(), re.MULTILINE))
    assert presets <= rows, f"presets without a row in docs/benchmarks.md: {sorted(presets - rows)}"

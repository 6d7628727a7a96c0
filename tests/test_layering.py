"""The layering of DESIGN.md: rlrun/env, rlrun/core and rlrun/config never depend on rlrun/algorithms.

They take narrow specs (EnvRunnerSpec, RLModuleSpec, the LearnerConfig Protocol) instead of an
AlgorithmConfig, so they can be built and tested without the algorithms, and an algorithm is a folder on top
of them. Two checks: importing every module of those packages loads no `rlrun.algorithms` module, and no
module there even names one in an import statement (TYPE_CHECKING blocks included, where a runtime import
test cannot see it).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import rlrun

LOWER_LAYERS = ("rlrun.env", "rlrun.core", "rlrun.config")
FORBIDDEN = "rlrun.algorithms"
ROOT = Path(rlrun.__file__).parent


def test_importing_the_lower_layers_loads_no_algorithm_module() -> None:
    """Every module under rlrun/env, rlrun/core and rlrun/config, imported in a fresh interpreter."""
    script = f"""
import importlib, json, pkgutil, sys
for name in {LOWER_LAYERS!r}:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m == {FORBIDDEN!r} or m.startswith({FORBIDDEN + "."!r}))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_no_lower_layer_module_imports_the_algorithms() -> None:
    offenders = []
    for package in LOWER_LAYERS:
        for path in sorted((ROOT.parent / package.replace(".", "/")).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                offenders += [f"{path.relative_to(ROOT.parent)}:{node.lineno} imports {name}" for name in names
                              if name == FORBIDDEN or name.startswith(FORBIDDEN + ".")]
    assert offenders == []

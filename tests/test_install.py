"""The README's install from a clone: a plain, non-editable `pip install .` into a fresh venv.

rlrun is not on a package index, so an install text of the form `pip install 'rlrun[video]'`
cannot work; every other test uses the editable install in `.venv`, which would hide a config
or plugin that only a real install misses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# The block after "Into your own environment": what a user types to install rlrun from a clone.
CLONE_BLOCK = re.search(r"Into your own environment.*?```bash\n(.*?)```", README, re.S)


def _commands() -> list[str]:
    assert CLONE_BLOCK, "the README has no 'Into your own environment' install block"
    return [line.split("#")[0].strip() for line in CLONE_BLOCK.group(1).splitlines() if line.split("#")[0].strip()]


def test_install_text_names_no_package_index_install():
    assert not re.search(r"pip install ['\"]?rlrun\b", README), "rlrun is installed from a clone"
    assert "pip install ." in _commands()


@pytest.mark.slow
def test_readme_install_from_a_clone_runs_the_main_job(tmp_path: Path):
    """The block's commands, as written, in a shell: the clone is this repository's HEAD, the venv in tmp_path,
    and the run is cut short (stop.iterations=2)."""
    commands = [c.replace("<repository-url>", str(REPO)).replace("~/venvs/rlrun", str(tmp_path / "venv"))
                for c in _commands()]
    assert commands[-1].startswith("rlrun "), commands
    commands[-1] += f" stop.iterations=2 logger.console=plain hydra.run.dir={tmp_path / 'run'}"
    script = "set -euo pipefail\n" + "\n".join(commands)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(sys.prefix))
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Installed, not linked to this checkout: the run used the venv's copy of the package.
    site = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import rlrun; print(rlrun.__file__)"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout
    assert str(tmp_path / "venv") in site, site
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2

"""The Hydra configs ship inside the wheel and are found from a normal (non-editable) install.

The repository has `conf -> rlrun/conf` at its root and the venv holds an editable install, so
a missing `package-data` entry would go unnoticed in every other test. Here the package is built
into a wheel, installed with `pip install --target` into a temporary directory and used from a
subprocess whose cwd is outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pathlib import Path

    import hydra
    import yaml

    import rlrun
    from rlrun.algorithms.from_config import build_algorithm_config
    from rlrun.config.validation import validate_run
    from rlrun.algorithms.registry import algorithm_schemas
    from rlrun.config.schema import register_schemas

    register_schemas(algorithm_schemas())
    out = {"rlrun_file": rlrun.__file__}
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        cfg = hydra.compose("config", overrides=["experiment=cartpole_ppo_fast", "env=pendulum"])
        validate_run(cfg)
        config = build_algorithm_config(cfg)
        config.validate()
        out["compose"] = {"env": config.env, "lr": config.lr, "train_batch_size": config.train_batch_size,
                          "num_epochs": config.num_epochs, "num_envs": config.num_envs_per_env_runner,
                          "return_mean": cfg.stop.return_mean, "timesteps": cfg.stop.timesteps}
        out["envs"] = {name: hydra.compose("config", overrides=[f"env={name}"]).env.id
                       for name in ("cartpole", "acrobot", "pendulum", "lunarlander", "lunarlander_continuous")}

    # The CLI entry point resolves `config_path="conf"` next to the installed rlrun/cli.py.
    from rlrun.cli import main
    sys.argv = ["rlrun", "experiment=cartpole_ppo_fast", "env=acrobot", "--cfg", "job"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main()
    out["cli"] = yaml.safe_load(buf.getvalue())
    print("PROBE-RESULT " + json.dumps(out))
    """
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    shown = " ".join(cmd[:4] if "-c" in cmd else cmd)
    assert proc.returncode == 0, f"{shown} ... failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel offline from a copy of the sources (keeps build/ out of the shared checkout)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    for name in ("README.md", "LICENSE", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src)
    shutil.copytree(REPO / "rlrun", src / "rlrun", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist),
          str(src)], cwd=tmp)
    (whl,) = dist.glob("rlrun-*.whl")
    return whl


def test_wheel_contains_every_config_file(wheel: Path):
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "rlrun" / "conf").rglob("*.yaml")}
    assert {"rlrun/conf/config.yaml", "rlrun/conf/experiment/cartpole_ppo_fast.yaml",
            "rlrun/conf/hydra/job_logging/rlrun.yaml"} <= shipped
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
    assert "rlrun/conf/__init__.py" in names


def test_installed_package_finds_its_configs(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)])
    assert (site / "rlrun" / "conf" / "config.yaml").is_file()

    work = tmp_path / "elsewhere"  # not the repository: no `conf` symlink, no rlrun/ beside it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RLRUN_DEBUG")}
    env["PYTHONPATH"] = str(site)
    proc = _run([sys.executable, "-c", PROBE], cwd=work, env=env)
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("PROBE-RESULT ")]
    out = json.loads(line.removeprefix("PROBE-RESULT "))

    rlrun_file = Path(out["rlrun_file"]).resolve()
    assert rlrun_file.is_relative_to(site.resolve()), f"imported {rlrun_file}, not the installed copy"
    written = OmegaConf.load(REPO / "rlrun" / "conf" / "experiment" / "cartpole_ppo_fast.yaml")  # the preset's values
    assert out["compose"] == {"env": "Pendulum-v1", "lr": written.algo.lr, "num_epochs": written.algo.num_epochs,
                              "train_batch_size": written.algo.train_batch_size,
                              "num_envs": written.env_runners.num_envs_per_runner,
                              "return_mean": written.stop.return_mean, "timesteps": written.stop.timesteps}
    assert out["envs"] == {"cartpole": "CartPole-v1", "acrobot": "Acrobot-v1", "pendulum": "Pendulum-v1",
                           "lunarlander": "LunarLander-v3", "lunarlander_continuous": "LunarLanderContinuous-v3"}
    cli = out["cli"]
    assert cli["env"]["id"] == "Acrobot-v1"
    assert cli["algo"]["name"] == "ppo"
    assert cli["algo"]["lr"] == written.algo.lr
    assert cli["algo"]["num_epochs"] == written.algo.num_epochs
    assert cli["stop"]["return_mean"] == written.stop.return_mean
    assert not (work / "outputs").exists()  # `--cfg job` only prints

"""`rlrun resume=<run dir>` of a run composed from the user's own presets, through the real CLI.

A run started with `--config-dir <dir>` or `hydra.searchpath=[file://<dir>]` resumes from
its directory alone: the saved `.hydra/config.yaml` is the run's config, so the preset
directory may since have moved, or its presets changed, without changing the resumed run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from test_resume import iterations, rlrun, snapshot, train_here

from rlrun.cli import EXIT_USAGE

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("resume_config_dir")

# A DQN experiment on an env preset of the user's own: neither the algorithm nor the env is the default.
EXPERIMENT = """# @package _global_
defaults:
  - override /algo: dqn
  - override /env: my_acrobot
env_runners:
  num_envs_per_runner: 2
algo:
  gamma: {gamma}
  num_steps_sampled_before_learning_starts: 64
evaluation:
  episodes: 2
stop:
  timesteps: null
"""
ENV_PRESET = """defaults:
  - /schema/env@_here_: env
  - _self_
id: Acrobot-v1
max_episode_steps: 100
"""


def write_presets(root: Path, gamma: float) -> Path:
    (root / "experiment").mkdir(parents=True, exist_ok=True)
    (root / "env").mkdir(exist_ok=True)
    (root / "experiment" / "my_acrobot_dqn.yaml").write_text(EXPERIMENT.format(gamma=gamma))
    (root / "env" / "my_acrobot.yaml").write_text(ENV_PRESET)
    return root


@pytest.mark.parametrize("how", ["config-dir-moved", "searchpath-edited"])
def test_a_run_of_the_users_presets_resumes_from_its_directory_alone(tmp_path: Path, how: str) -> None:
    presets = write_presets(tmp_path / "presets", gamma=0.97)
    run_dir = tmp_path / "run"
    searchpath = f"hydra.searchpath=[file://{presets}]"
    source = ["--config-dir", str(presets)] if how == "config-dir-moved" else [searchpath]
    proc = rlrun(*source, "experiment=my_acrobot_dqn", "stop.iterations=4", "logger.console=plain",
                 f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    if how == "config-dir-moved":
        shutil.move(presets, tmp_path / "elsewhere")
        again: list[str] = []
    else:  # the preset changes after the run began; naming its directory again changes nothing
        write_presets(presets, gamma=0.5)
        again = [searchpath]
    proc = rlrun(f"resume={run_dir}", "stop.iterations=6", *again, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run_dir} from final (iteration 4)" in proc.stdout

    assert iterations(run_dir) == [1, 2, 3, 4, 5, 6]
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert (cfg.algo.name, cfg.algo.gamma, cfg.env.id, cfg.env.max_episode_steps) == ("dqn", 0.97, "Acrobot-v1", 100)
    assert cfg.stop.iterations == 6
    # The record keeps how the run was composed, with the new stop criterion.
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert overrides == ["experiment=my_acrobot_dqn", "logger.console=plain", "stop.iterations=6"]


@pytest.fixture(scope="module")
def one_iteration(tmp_path_factory) -> Path:
    """A finished 1-iteration run, made in this process (`rlrun.train` writes the CLI's run directory)."""
    return train_here(tmp_path_factory.mktemp("one_iteration") / "run", "stop.iterations=1")


def test_a_saved_key_that_rlrun_no_longer_has_is_named(one_iteration: Path, tmp_path: Path) -> None:
    """The saved config is merged as far as today's schemas go; the key they lack is the one-line refusal."""
    run_dir = tmp_path / "run"
    shutil.copytree(one_iteration, run_dir)
    config = run_dir / ".hydra" / "config.yaml"
    saved = OmegaConf.load(config)
    saved.algo.retired_option = 3  # as if a later rlrun had removed it
    OmegaConf.save(saved, config)
    before = snapshot(run_dir)
    proc = rlrun(f"resume={run_dir}", "stop.iterations=2", cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"rlrun: error: cannot resume {run_dir}: algo.retired_option would change "
                                        "from 3 to '<missing>'; a run continues with its own config, and only "
                                        "stop.*, logger.*, checkpoint.*, evaluation.* may change"], proc.stderr
    assert snapshot(run_dir) == before


def test_a_run_saved_with_env_name_still_resumes(one_iteration: Path, tmp_path: Path) -> None:
    """`env.name` never changed what a run trains; runs saved before rlrun dropped it resume (RETIRED_KEYS)."""
    run_dir = tmp_path / "run"
    shutil.copytree(one_iteration, run_dir)
    config = run_dir / ".hydra" / "config.yaml"
    saved = OmegaConf.load(config)
    saved.env.name = "cartpole"  # as every run before the key was dropped
    OmegaConf.save(saved, config)
    proc = rlrun(f"resume={run_dir}", "stop.iterations=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert iterations(run_dir) == [1, 2]

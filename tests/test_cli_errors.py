"""Bad input through the real `rlrun` CLI: one line `rlrun: error: ...`, exit 2, no traceback, no run directory.

Each case runs `rlrun` in a subprocess (the `run_cli` fixture). The check is the CLI's contract
from rlrun/cli.py: a user mistake ends in exactly one stderr line that names the offending
key or name, exit status 2, never a traceback, and the run directory Hydra would create is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlrun.cli import EXIT_USAGE, one_line
from rlrun.config.schema import LoggerSchema, register_schemas

TESTS_DIR = Path(__file__).resolve().parent
# If a regression lets one of these runs start training, stop it after one short iteration.
SHORT_RUN = ("stop.timesteps=null", "stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
             "algo.num_epochs=1")

# (id, overrides, substrings the error line must contain: the offending key/name and what is wrong)
CASES = [
    ("learners.num<0", ["learners.num=-1"], ["learners.num", ">= 0"]),
    ("learners.num-type", ["learners.num=abc"], ["learners.num", "abc"]),
    ("learners.num_cpus", ["learners.num_cpus_per_learner=0"], ["learners.num_cpus_per_learner", "> 0"]),
    ("learners.num_gpus<0", ["learners.num_gpus_per_learner=-1"], ["learners.num_gpus_per_learner", ">= 0"]),
    pytest.param("learners.num_gpus-no-cuda", ["learners.num_gpus_per_learner=1"],
                 ["learners.num_gpus_per_learner", "CUDA"],
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")),
    ("env_runners.num<0", ["env_runners.num=-1"], ["env_runners.num", ">= 0"]),
    ("env_runners.num-ray", ["env_runners.num=2"], ["env_runners.num=2", "embedded"]),
    ("env_runners.num_envs", ["env_runners.num_envs_per_runner=0"], ["env_runners.num_envs_per_runner", ">= 1"]),
    ("env_runners.rollout_fragment_length", ["env_runners.rollout_fragment_length=0"],
     ["env_runners.rollout_fragment_length", ">= 1"]),
    ("algo.lr=0", ["algo.lr=0"], ["algo.lr", "> 0"]),
    ("algo.lr<0", ["algo.lr=-1"], ["algo.lr", "> 0"]),
    ("algo.gamma", ["algo.gamma=1.5"], ["algo.gamma", "1.5"]),
    ("algo.lambda_", ["algo.lambda_=2"], ["algo.lambda_", "[0, 1]"]),
    ("algo.minibatch>batch", ["algo.minibatch_size=5000", "algo.train_batch_size=1000"],
     ["algo.minibatch_size", "algo.train_batch_size"]),
    ("algo.num_epochs", ["algo.num_epochs=0"], ["algo.num_epochs", ">= 1"]),
    ("algo.clip_param", ["algo.clip_param=0"], ["algo.clip_param", "> 0"]),
    ("algo.grad_clip", ["algo.grad_clip=-1"], ["algo.grad_clip", "> 0"]),
    ("algo.entropy_coeff", ["algo.entropy_coeff=-0.1"], ["algo.entropy_coeff", ">= 0"]),
    # Integer timesteps, as in the schema's own example `[[0, 1e-3], [100000, 1e-4]]`.
    ("algo.lr_schedule-decreasing", ["algo.lr_schedule=[[100,0.1],[0,0.2]]"], ["algo.lr_schedule", "decrease"]),
    ("algo.lr_schedule-decreasing-float", ["algo.lr_schedule=[[100.0,0.1],[0.0,0.2]]"],
     ["algo.lr_schedule", "decrease"]),
    ("algo.learner_class-not-learner", ["algo.learner_class=os:path"], ["algo.learner_class", "os:path", "Learner"]),
    ("algo.unknown-key", ["algo.nosuchkey=1"], ["algo.nosuchkey"]),
    ("algo=unknown", ["algo=nosuchalgo"], ["nosuchalgo"]),
    ("env=unknown", ["env=nosuchenv"], ["nosuchenv"]),
    ("env.id-unregistered", ["env.id=NoSuchEnv-v0"], ["env.id", "NoSuchEnv-v0"]),
    ("env.id-no-module", ["env.id=no_such_module:Env"], ["env.id", "no_such_module"]),
    ("env.id-unsupported-action-space", ["env.id=user_envs:MultiBinaryActionEnv"],
     ["user_envs:MultiBinaryActionEnv", "does not support", "MultiBinary"]),
    ("env.max_episode_steps=0", ["env.max_episode_steps=0", *SHORT_RUN], ["env.max_episode_steps"]),
    ("env.max_episode_steps<0-user-env", ["env.id=user_envs:TinyEnv", "env.max_episode_steps=-1", *SHORT_RUN],
     ["env.max_episode_steps"]),
    ("model.activation", ["model.activation=swish"], ["model.activation", "swish"]),
    ("model.hiddens", ["model.hiddens=[0]"], ["model.hiddens"]),
    ("stop.timesteps", ["stop.timesteps=-5"], ["stop.timesteps", "> 0"]),
    ("stop-none", ["stop.timesteps=null"], ["stop criterion"]),
    ("checkpoint.every_iterations", ["checkpoint.every_iterations=-1"], ["checkpoint.every_iterations", ">= 0"]),
    ("logger.console", ["logger.console=fancy"], ["logger.console", "fancy"]),
]


def _case_id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize(("name", "overrides", "expected"), CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_one_line_error(run_cli, tmp_path: Path, monkeypatch, name: str, overrides: list[str],
                                     expected: list[str]):
    # `user_envs:<Class>` envs live in tests/user_envs.py; the CLI runs with cwd=tmp_path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("RLRUN_DEBUG", raising=False)
    proc = run_cli(*overrides, timeout=120)
    output = f"--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"

    assert "Traceback" not in proc.stdout + proc.stderr, output
    assert proc.returncode == EXIT_USAGE, output
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"stderr must be exactly one line, got {len(lines)}\n{output}"
    line = lines[0]
    assert line.startswith("rlrun: error: ") and line.strip() != "rlrun: error:", output
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"
    assert not (tmp_path / "run").exists(), f"run directory left behind: {sorted((tmp_path / 'run').rglob('*'))}"


def _composition_error(*overrides: str) -> Exception:
    register_schemas()
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        try:
            hydra.compose(config_name="config", overrides=list(overrides))
        except Exception as e:  # noqa: BLE001 - the error is what we test
            return e
    raise AssertionError(f"composing {overrides} did not fail")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["learners.num=abc"], ["learners.num=abc", "could not be converted to Integer"]),
        (["algo.nosuchkey=1"], ["algo.nosuchkey", "not in 'PPOSchema'"]),
        (["algo=nosuchalgo"], ["algo/nosuchalgo", "ppo"]),
        (["logger.console=fancy"], ["logger.console=fancy", "expected one of [rich, plain, none]"]),
    ],
)
def test_one_line_flattens_hydra_errors(overrides: list[str], expected: list[str]):
    error = _composition_error(*overrides)
    full = str(error) + (str(error.__cause__) if error.__cause__ else "")
    assert "\n" in full  # Hydra/OmegaConf spread it over several lines ...
    line = one_line(error)
    assert "\n" not in line and line == line.strip() and line  # ... one_line does not
    for text in expected:
        assert text in line
    for noise in ("full_key:", "object_type=", "Config search path", "provider="):
        assert noise not in line


def test_one_line_flattens_omegaconf_validation_error():
    cfg = OmegaConf.structured(LoggerSchema)
    with pytest.raises(OmegaConfBaseException) as info:
        cfg.console = "fancy"
    assert "\n" in str(info.value)
    assert one_line(info.value) == "Invalid value 'fancy', expected one of [rich, plain, none]"

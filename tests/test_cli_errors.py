"""Bad input through the real `rlrun` CLI: one line `rlrun: error: ...`, exit 2, no traceback, no run directory.

Each case runs `rlrun` in a subprocess (the `run_cli` fixture). The check is the CLI's contract
from rlrun/cli.py: a user mistake ends in exactly one stderr line that names the offending
key or name, exit status 2, never a traceback, and the run directory Hydra would create is gone.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hydra
import pytest
import torch
from conftest import RLRUN, pythonpath_with_tests
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from test_config import build

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.cli import EXIT_USAGE, one_line
from rlrun.config.errors import ConfigError
from rlrun.config.schema import LoggerSchema, register_schemas

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("cli_errors")

# If a regression lets one of these runs start training, stop it after one short iteration.
SHORT_RUN = ("stop.timesteps=null", "stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
             "algo.num_epochs=1")

# (id, overrides, substrings the error line must contain: the offending key/name and what is wrong)
CASES = [
    ("learners.num<0", ["learners.num=-1"], ["learners.num", ">= 0"]),
    ("learners.num-type", ["learners.num=abc"], ["learners.num", "abc"]),
    ("learners.num_cpus", ["learners.num_cpus_per_learner=0"], ["learners.num_cpus_per_learner", "> 0"]),
    ("learners.num_threads", ["learners.num_threads=0"], ["learners.num_threads must be >= 1"]),
    ("env_runners.num_threads", ["env_runners.num_threads=0"], ["env_runners.num_threads must be >= 1"]),
    ("learners.num_gpus<0", ["learners.num_gpus_per_learner=-1"], ["learners.num_gpus_per_learner", "[0, 1]"]),
    pytest.param("learners.num_gpus-no-cuda", ["learners.num_gpus_per_learner=1"],
                 ["learners.num_gpus_per_learner", "CUDA"],
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")),
    ("env_runners.num<0", ["env_runners.num=-1"], ["env_runners.num", ">= 0"]),
    ("env_runners.max_restarts", ["env_runners.max_restarts=-1"], ["env_runners.max_restarts", ">= 0"]),
    ("learners.max_restarts", ["learners.max_restarts=-1"], ["learners.max_restarts", ">= 0"]),
    ("learners.max_non_finite_updates", ["learners.max_non_finite_updates=0"],
     ["learners.max_non_finite_updates", ">= 1"]),
    ("learners.num_gpus>1", ["learners.num=1", "learners.num_gpus_per_learner=2"],
     ["learners.num_gpus_per_learner", "[0, 1]"]),
    ("ray.unknown-key", ["ray.nosuchkey=1"], ["ray.nosuchkey"]),
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
    ("algo.learner_class-not-a-class", ["algo.learner_class=os:path"],
     ["algo.learner_class", "os:path", "not a class"]),
    ("algo.learner_class-not-learner", ["algo.learner_class=collections:OrderedDict"],
     ["algo.learner_class", "collections:OrderedDict", "not a Learner subclass"]),
    ("algo.unknown-key", ["algo.nosuchkey=1"], ["algo.nosuchkey"]),
    # Keys added with + / ++ must exist too: a typo would otherwise run another experiment without a word.
    ("+stop.timestep", ["+stop.timestep=500"], ["unknown key stop.timestep", "did you mean stop.timesteps?"]),
    ("++stop.timestep", ["++stop.timestep=500"], ["unknown key stop.timestep", "did you mean stop.timesteps?"]),
    ("stop.timestep-no-plus", ["stop.timestep=500"], ["unknown key stop.timestep", "did you mean stop.timesteps?"]),
    ("+model.use_attention", ["+model.use_attention=true"], ["unknown key model.use_attention", "hiddens"]),
    # A preset picks the algorithm, so the refused key may be another algorithm's (it used to end in StopIteration).
    ("preset-other-algo-key", ["experiment=cartpole_ppo_fast", "algo.n_step=3"],
     ["unknown key algo.n_step for this run's algorithm; it is a key of algo=dqn, algo=sac"]),
    ("model.module_class-unimportable", ["model.module_class=no_such_mod:MyNet"],
     ["model.module_class", "no_such_mod:MyNet", "cannot be imported"]),
    ("callbacks-unimportable", ["callbacks=[no_such_mod:CB]"], ["callbacks", "no_such_mod:CB", "cannot be imported"]),
    ("+algo.replay_buffer-typo", ["algo=dqn", "+algo.replay_buffer.capacty=5"],
     ["unknown key algo.replay_buffer.capacty", "did you mean algo.replay_buffer.capacity?"]),
    ("+logger.mlflow-key-on-default", ["+logger.tracking_uri=x"], ["unknown key logger.tracking_uri"]),
    # A key with both a value and a schedule: the schedule must start at the value, or setting it changes nothing.
    ("algo.lr-vs-lr_schedule", ["experiment=cartpole_ppo_fast", "algo.lr_schedule=[[0,0.01],[1000,0.0]]"],
     ["algo.lr=0.002 conflicts with algo.lr_schedule", "algo.lr_schedule=null"]),
    ("algo.beta-vs-beta_schedule", ["algo=dqn", "algo.replay_buffer.beta_schedule=[[0,0.5],[1000,1.0]]"],
     ["algo.replay_buffer.beta=0.4 conflicts with algo.replay_buffer.beta_schedule"]),
    ("algo=unknown", ["algo=nosuchalgo"], ["nosuchalgo"]),
    ("env=unknown", ["env=nosuchenv"], ["nosuchenv"]),
    ("env.id-unregistered", ["env.id=NoSuchEnv-v0"], ["env.id", "NoSuchEnv-v0"]),
    ("env.id-no-module", ["env.id=no_such_module:Env"], ["env.id", "no_such_module"]),
    ("env.id-unsupported-action-space", ["algo=dqn", "env.id=user_envs:MultiBinaryActionEnv"],
     ["user_envs:MultiBinaryActionEnv", "does not support", "algorithms that take MultiBinary: ppo, impala, appo, "
      "bc, marwil"]),
    ("env.max_episode_steps=0", ["env.max_episode_steps=0", *SHORT_RUN], ["env.max_episode_steps"]),
    ("env.max_episode_steps<0-user-env", ["env.id=user_envs:TinyEnv", "env.max_episode_steps=-1", *SHORT_RUN],
     ["env.max_episode_steps"]),
    ("model.activation", ["model.activation=swish"], ["model.activation", "swish"]),
    ("model.hiddens", ["model.hiddens=[0]"], ["model.hiddens"]),
    ("stop.timesteps", ["stop.timesteps=-5"], ["stop.timesteps", "> 0"]),
    ("stop-none", ["stop.timesteps=null"], ["stop criterion"]),
    ("checkpoint.every_iterations", ["checkpoint.every_iterations=-1"], ["checkpoint.every_iterations", ">= 0"]),
    ("logger.console", ["logger.console=fancy"], ["logger.console", "fancy"]),
    ("seed<0", ["seed=-5"], ["seed must be an integer in [0, ", "(got -5)"]),
    ("seed>2**32-1", ["seed=4294967296"], ["seed must be an integer in [0, ", "2**32 - 1"]),
    # Valid alone (test_config), but a replaced Ray runner's seed would pass 2**32 - 1.
    ("seed-derived-restart", ["seed=4284967288", "env_runners.num=1"], ["seed", "(got 4284967288)"]),
    ("multirun+cfg", ["-m", "seed=0,1", "--cfg", "job"], ["--multirun", "--cfg", "rlrun --cfg job"]),
    ("resolve-without-cfg", ["--resolve"], ["--resolve", "--cfg"]),
]


CASE_VALUES = [c.values if hasattr(c, "values") else c for c in CASES]  # pytest.param(...) or a plain tuple
CASE_IDS = [name for name, _, _ in CASE_VALUES]
CASE_ARGS = {name: overrides for name, overrides, _ in CASE_VALUES}
# Flags are read by the CLI itself, before any config is composed.
FLAG_CASES = {"multirun+cfg", "resolve-without-cfg"}
# Through the real CLI as well, one case per place an error comes from: an override Hydra or OmegaConf
# rejects (type, unknown key, unknown option), a range check, the env, the seed, a schedule, the flags.
# Every rejection takes the same path out of rlrun.cli, so the others are checked in-process.
CLI_CASES = ["learners.num<0", "learners.num-type", "ray.unknown-key", "algo=unknown", "env.id-no-module",
             "seed<0", "algo.lr_schedule-decreasing", "+stop.timestep", "algo.lr-vs-lr_schedule", *sorted(FLAG_CASES)]


def _rlrun(overrides: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """The same command line as conftest's `run_cli`, with the run directory at cwd/run."""
    run_dir = cwd / "run"
    cmd = [RLRUN, *overrides, f"hydra.run.dir={run_dir}", "logger.console=plain"]
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"}
    # `user_envs:<Class>` envs live in tests/user_envs.py; the CLI runs from a temporary directory.
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=pythonpath_with_tests())
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=cwd, env=env)
    return proc, run_dir


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run the CLI cases concurrently (one `rlrun` takes ~2.5 s of CPU, mostly imports)."""
    base = tmp_path_factory.mktemp("cli_errors")

    def run(index_name: tuple[int, str]) -> tuple[subprocess.CompletedProcess, Path]:
        cwd = base / f"case{index_name[0]}"
        cwd.mkdir()
        return _rlrun(CASE_ARGS[index_name[1]], cwd)

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
        return dict(zip(CLI_CASES, pool.map(run, enumerate(CLI_CASES)), strict=True))


def _expected(name: str) -> list[str]:
    return next(expected for case, _, expected in CASE_VALUES if case == name)


@pytest.mark.parametrize("name", CLI_CASES)
def test_bad_input_is_one_line_error(cli_results, name: str):
    proc, run_dir = cli_results[name]
    output = f"--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}"

    assert "Traceback" not in proc.stdout + proc.stderr, output
    assert proc.returncode == EXIT_USAGE, output
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"stderr must be exactly one line, got {len(lines)}\n{output}"
    line = lines[0]
    assert line.startswith("rlrun: error: ") and line.strip() != "rlrun: error:", output
    for text in _expected(name):
        assert text in line, f"{text!r} not in {line!r}"
    assert not run_dir.exists(), f"run directory left behind: {sorted(p.name for p in run_dir.rglob('*'))}"


@pytest.mark.parametrize(("name", "overrides", "expected"),
                         [c for c in CASES if (c.values if hasattr(c, "values") else c)[0] not in FLAG_CASES],
                         ids=[n for n in CASE_IDS if n not in FLAG_CASES])
def test_bad_value_is_rejected_before_anything_starts(name: str, overrides: list[str], expected: list[str]):
    """Compose, convert and validate as `run_experiment` does: a user error the CLI prints as one line."""
    with pytest.raises((ConfigError, HydraException, OmegaConfBaseException)) as error:
        build(*overrides)
    line = one_line(error.value)
    assert "\n" not in line and line, repr(line)
    for text in expected:
        assert text in line, f"{text!r} not in {line!r}"


def test_run_cli_fixture_reports_one_line(run_cli, tmp_path: Path, monkeypatch):
    """The shared `run_cli` fixture (run directory tmp_path/run) sees the same one-line error."""
    monkeypatch.delenv("RLRUN_DEBUG", raising=False)
    proc = run_cli("algo.gamma=0", timeout=120)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.splitlines() == ["rlrun: error: algo.gamma must be in (0, 1] (got 0.0)"], proc.stderr
    assert not (tmp_path / "run").exists()


def test_rlrun_debug_shows_the_traceback(run_cli, monkeypatch):
    """`RLRUN_DEBUG=1` (documented in rlrun/cli.py) re-raises the ConfigError with its traceback."""
    monkeypatch.setenv("RLRUN_DEBUG", "1")
    proc = run_cli("algo.num_epochs=0", timeout=120)
    assert proc.returncode not in (0, EXIT_USAGE), proc.stderr
    assert "Traceback" in proc.stderr
    assert "ConfigError: algo.num_epochs must be >= 1 (got 0)" in proc.stderr


def _composition_error(*overrides: str) -> Exception:
    register_schemas(algorithm_schemas())
    with hydra.initialize_config_module(config_module="rlrun.conf", version_base="1.3"):
        try:
            hydra.compose(config_name="config", overrides=list(overrides))
        except Exception as e:  # the error is what we test
            return e
    raise AssertionError(f"composing {overrides} did not fail")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["learners.num=abc"], ["learners.num=abc", "could not be converted to Integer"]),
        (["algo.nosuchkey=1"], ["unknown key algo.nosuchkey", "algo has", "lambda_"]),
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


def _rlrun_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`rlrun <args>` in `cwd` with Hydra's own output directories (no hydra.run.dir given)."""
    env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"}
    return subprocess.run([RLRUN, *args, "logger.console=plain"], capture_output=True, text=True, timeout=180,
                          cwd=cwd, env=env)


def test_rejected_commands_leave_no_directory(tmp_path: Path):
    """Hydra's `outputs/<date>/` and a rejected sweep's `multirun/<date>/<time>/` go; a user's directories stay."""
    mine = tmp_path / "mine"
    commands = {
        "run": ["seed=-5"],  # outputs/<date>/<time>
        "sweep": ["-m", "algo.nosuchkey=1,2"],  # multirun/<date>/<time>/multirun.yaml
        "run-in-user-dir": ["seed=-5", f"hydra.run.dir={mine}/a/b"],
        "sweep-in-user-dir": ["-m", "algo.nosuchkey=1,2", f"hydra.sweep.dir={mine}/sweep"],
    }
    for name in commands:
        (tmp_path / name).mkdir()
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's\n")
    (mine / "empty").mkdir()
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        procs = dict(zip(commands, pool.map(lambda n: _rlrun_in(tmp_path / n, *commands[n]), commands), strict=True))
    for name, proc in procs.items():
        assert proc.returncode == EXIT_USAGE, f"{name}: {proc.stderr}"
        assert len(proc.stderr.splitlines()) == 1, f"{name}: {proc.stderr}"
        assert not any((tmp_path / name).iterdir()), f"{name} left {sorted((tmp_path / name).rglob('*'))}"
    assert sorted(p.name for p in mine.iterdir()) == ["empty", "notes.txt"]


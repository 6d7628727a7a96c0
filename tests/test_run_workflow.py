"""README's run workflow, through the real CLIs: stop criteria, checkpoint retention, TensorBoard after
a resume, resuming an env that cannot be snapshotted, `rlrun-eval` without best/ and without Ray, and
`build_algo()` starting Ray by itself.

Runs are `rlrun` subprocesses in embedded mode with 64-step batches on 2 envs (7 in all, a few
seconds each); independent runs go two at a time. The env that cannot be snapshotted is
`opaque_envs.OpaqueStateEnv`, found through PYTHONPATH like the `user_envs` of other tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import RLRUN, pythonpath_with_tests
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from test_resume import deterministic

from rlrun.algorithms.algorithm import read_checkpoint_state
from rlrun.algorithms.ppo import PPOConfig
from rlrun.api import train as rlrun_train
from rlrun.core import DEFAULT_MODULE_ID, Columns
from rlrun.env import EnvRunner
from rlrun.run.recorder import read_metrics

# The module fixture is made once: every test of the file on one worker (`make test` runs two).
pytestmark = pytest.mark.xdist_group("run_workflow")

TINY = ("env_runners.num_envs_per_runner=2", "algo.train_batch_size=64", "algo.minibatch_size=32",
        "algo.num_epochs=1", "evaluation.episodes=2", "logger.console=plain")
ENV = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | {
    "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath_with_tests()}
OPAQUE_ENV = "opaque_envs:OpaqueStateEnv"
FRESH_EPISODES_WARNING = "episodes in flight at the checkpoint cannot be restored; starting fresh ones"

# `rlrun-eval` in a process that reports afterwards whether anything imported Ray.
EVAL_REPORTING_RAY = """
import sys
from rlrun.cli_eval import main

sys.argv = ["rlrun-eval", *sys.argv[1:]]
main()
print("ray imported:", "ray" in sys.modules)
"""

# The Python API on a fresh process: is Ray up after build_algo(), does it stay up after algo.stop()?
BUILD_ALGO_WITH_A_RUNNER_ACTOR = """
import json
import ray
from rlrun.algorithms.ppo import PPOConfig
from rlrun.api import train as rlrun_train

before = ray.is_initialized()
config = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=1, num_envs_per_env_runner=2)
          .training(train_batch_size=64, minibatch_size=32, num_epochs=1))
algo = config.build_algo()
try:
    after_build = ray.is_initialized()
    result = algo.train()
finally:
    algo.stop()
after_stop = ray.is_initialized()
ray.shutdown()
print(json.dumps({"before": before, "after_build": after_build, "after_stop": after_stop,
                  "after_shutdown": ray.is_initialized(), "steps": result["num_env_steps_sampled_lifetime"],
                  "runners": result["env_runners"]["num_healthy_env_runners"]}))
"""


def train(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """A new run in `run_dir` with the tiny settings."""
    return _ok([RLRUN, *TINY, *args, f"hydra.run.dir={run_dir}"], run_dir.parent)


def resume(target: Path, *args: str) -> subprocess.CompletedProcess:
    """`rlrun resume=<target>`: the run's own settings, only `args` new."""
    return _ok([RLRUN, f"resume={target}", *args], target.parent)


def _ok(cmd: list[str], cwd: Path, env: dict[str, str] = ENV, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def in_parallel(*calls: tuple) -> list[subprocess.CompletedProcess]:
    """`(function, *args)` calls, two at a time."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda call: call[0](*call[1:]), calls))


def checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


def periodic(iterations: int) -> list[str]:
    return [f"checkpoint_{i:06d}" for i in range(1, iterations + 1)]


# -- stop.timesteps and stop.time_s; checkpoint.keep_last 0 and null -----------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """Two runs that only a stop criterion other than iterations ends, with a checkpoint every iteration."""
    root = tmp_path_factory.mktemp("stopped")
    runs = {
        # 150 env steps are 3 iterations of ~60 (autoreset steps do not count).
        "timesteps": ("stop.timesteps=150", "checkpoint.every_iterations=1", "checkpoint.keep_last=0"),
        # stop.iterations only as a backstop, should stop.time_s be ignored.
        "time_s": ("stop.timesteps=null", "stop.time_s=1.0", "stop.iterations=200", "checkpoint.every_iterations=1",
                   "checkpoint.keep_last=null"),
    }
    procs = in_parallel(*((train, root / name, *args) for name, args in runs.items()))
    return {name: (root / name, proc) for name, proc in zip(runs, procs, strict=True)}


def assert_stopped_by(run_dir: Path, proc: subprocess.CompletedProcess, reason: str) -> list[dict]:
    """The run ended for `reason`, said so, and its last row carries the closing evaluation."""
    rows = read_metrics(run_dir)
    assert [r["training_iteration"] for r in rows] == list(range(1, len(rows) + 1))
    assert f"done ({reason}); run directory: {run_dir}" in proc.stdout
    assert f"finished ({reason}) after {len(rows)} iterations" in (run_dir / "rlrun.log").read_text()
    assert "evaluation/episode_return_mean" in rows[-1]
    assert not any("evaluation/episode_return_mean" in r for r in rows[:-1])  # evaluation.every_iterations=0
    final = read_checkpoint_state(run_dir / "checkpoints" / "final")
    assert final["iteration"] == len(rows)
    assert final["counters"]["num_env_steps_sampled_lifetime"] == rows[-1]["num_env_steps_sampled_lifetime"]
    return rows


def test_stop_timesteps_ends_the_run_at_the_first_iteration_that_reaches_it(stopped) -> None:
    rows = assert_stopped_by(*stopped["timesteps"], "timesteps >= 150")
    steps = [r["num_env_steps_sampled_lifetime"] for r in rows]
    assert len(rows) >= 2 and steps[-1] >= 150 > steps[-2]


def test_stop_time_s_ends_the_run_at_the_first_iteration_that_reaches_it(stopped) -> None:
    rows = assert_stopped_by(*stopped["time_s"], "time_s >= 1.0")
    times = [r["time_total_s"] for r in rows]
    assert times[-1] >= 1.0 and all(t < 1.0 for t in times[:-1])
    assert len(rows) < 200


@pytest.mark.parametrize("run", ["timesteps", "time_s"], ids=["keep_last=0", "keep_last=null"])
def test_keep_last_0_and_null_keep_every_periodic_checkpoint(stopped, run: str) -> None:
    run_dir, _ = stopped[run]
    assert checkpoint_names(run_dir) == sorted([*periodic(len(read_metrics(run_dir))), "best", "final"])


# -- rlrun-eval: the latest checkpoint when there is no best/, and no Ray ------------------------


def test_rlrun_eval_without_best_takes_the_latest_checkpoint_and_never_imports_ray(stopped, tmp_path) -> None:
    """A run killed before its closing evaluation has periodic checkpoints only: no best/, no final/.

    Its config says Ray mode (2 runner actors, 2 GPU learners): rlrun-eval still evaluates in
    one process, without importing Ray (which is installed) or needing a GPU.
    """
    assert importlib.util.find_spec("ray") is not None
    run_dir = tmp_path / "killed"
    shutil.copytree(stopped["timesteps"][0], run_dir)
    last = len(read_metrics(run_dir))
    for name in ("best", "final", f"checkpoint_{last:06d}"):
        shutil.rmtree(run_dir / "checkpoints" / name)
    config_path = run_dir / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(config_path)
    cfg.env_runners.num, cfg.learners.num, cfg.learners.num_gpus_per_learner = 2, 2, 1
    OmegaConf.save(cfg, config_path)

    proc = _ok([sys.executable, "-c", EVAL_REPORTING_RAY, f"checkpoint={run_dir}", "episodes=2"], tmp_path)
    assert proc.stdout.splitlines()[-1] == "ray imported: False"
    expected = run_dir / "checkpoints" / f"checkpoint_{last - 1:06d}"
    assert f"checkpoint {expected} (iteration {last - 1})" in proc.stdout
    report = json.loads(next(run_dir.glob("eval_*.json")).read_text())
    assert Path(report["checkpoint"]) == expected and report["num_episodes"] == 2


# -- resume from an older checkpoint of an env whose state is not plain data ---------------------


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> dict:
    """A run of 4 iterations on an env rlrun cannot snapshot, resumed from its iteration-2 checkpoint
    to 3 iterations, in two copies of its directory (which must end the same)."""
    root = tmp_path_factory.mktemp("resumed")
    original = root / "original"
    # Made in this process (`rlrun.train` writes the CLI's run directory, without a new interpreter's imports);
    # the resumes under test are real `rlrun` processes.
    rlrun_train(*TINY, f"env.id={OPAQUE_ENV}", "stop.timesteps=null", "stop.iterations=4",
                "checkpoint.every_iterations=2", "evaluation.every_iterations=2", f"hydra.run.dir={original}")
    dropped = read_metrics(original)[2:]
    copies = [root / "a", root / "b"]
    for copy in copies:
        shutil.copytree(original, copy)
    in_parallel(*((resume, copy / "checkpoints" / "checkpoint_000002", "stop.iterations=3") for copy in copies))
    return {"run_dir": copies[0], "copy": copies[1], "dropped": dropped}


def scalar_steps(event_file: Path, tag: str) -> list[int]:
    """The steps of every `tag` scalar written to one event file, hidden or not."""
    return [e.step for e in EventFileLoader(str(event_file)).Load() if any(v.tag == tag for v in e.summary.value)]


def test_tensorboard_hides_the_steps_a_resume_dropped(resumed) -> None:
    run_dir = resumed["run_dir"]
    rows = read_metrics(run_dir)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    step_of = [r["num_env_steps_sampled_lifetime"] for r in rows]

    # The interrupted process's events of iterations 3 and 4 are still on disk...
    first_file, second_file = sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    dropped_steps = [r["num_env_steps_sampled_lifetime"] for r in resumed["dropped"]]
    assert scalar_steps(first_file, "training_iteration") == [*step_of[:2], *dropped_steps]
    assert scalar_steps(second_file, "training_iteration") == [step_of[2]]
    # ... but TensorBoard reads every tag as the metrics file has it: no dropped step, no step twice.
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "learners/default_policy/total_loss" in tags
    for tag in tags:
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == sorted(set(steps)) and set(steps) <= set(step_of), f"{tag}: steps {steps}"
    shown = [(e.step, e.value) for e in events.Scalars("training_iteration")]
    assert shown == [(step, i) for i, step in enumerate(step_of, 1)]
    evaluated = [(r["num_env_steps_sampled_lifetime"], r["evaluation/episode_return_mean"]) for r in rows
                 if "evaluation/episode_return_mean" in r]
    assert [step for step, _ in evaluated] == step_of[1:]  # iteration 2's periodic one, iteration 3's closing one
    shown = [(e.step, e.value) for e in events.Scalars("evaluation/episode_return_mean")]
    assert shown == [(step, pytest.approx(value)) for step, value in evaluated]


def test_resumed_run_of_an_opaque_env_starts_fresh_episodes_reproducibly(resumed) -> None:
    run_dir, copy = resumed["run_dir"], resumed["copy"]
    log = (run_dir / "rlrun.log").read_text()
    assert "is not plain data; a resumed run starts fresh episodes" in log  # said when checkpointing
    assert FRESH_EPISODES_WARNING in log
    rows, copy_rows = read_metrics(run_dir), read_metrics(copy)
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    for a, b in zip(rows, copy_rows, strict=True):
        assert deterministic(a) == deterministic(b), f"iteration {a['training_iteration']} differs"


def opaque_config() -> PPOConfig:
    return (PPOConfig().environment(OPAQUE_ENV).env_runners(num_envs_per_env_runner=2)
            .training(train_batch_size=64, minibatch_size=32, num_epochs=1))


def test_env_runner_restores_an_opaque_env_with_fresh_reproducible_episodes() -> None:
    runner = EnvRunner(opaque_config().env_runner_spec())
    first = runner.sample(num_timesteps=22)
    state = runner.get_state()
    assert state["sampling"] and "episodes_in_flight" not in state
    assert (first[Columns.BOOTSTRAP_OBS][:, 0] > 0).any(), "no episode was in flight: nothing to test"
    restored = [EnvRunner(opaque_config().env_runner_spec()) for _ in range(2)]
    for r in restored:
        r.set_weights({DEFAULT_MODULE_ID: runner.module.get_state()})  # as an algorithm syncs them
        r.set_state(state)
    going_on, *fresh = (r.sample(num_timesteps=40) for r in (runner, *restored))
    for r in (runner, *restored):
        r.stop()

    # The original runner continues its episodes; a restored one starts every env at step 0 ...
    np.testing.assert_array_equal(going_on[Columns.OBS][0], first[Columns.BOOTSTRAP_OBS])
    assert (fresh[0][Columns.OBS][0][:, 0] == 0).all()
    # ... with episode lengths from a seed drawn from the restored RNG, not a replay of the run's first episodes ...
    assert not np.array_equal(fresh[0][Columns.OBS][0], first[Columns.OBS][0])
    # ... the same for every restore of the same state.
    for column, value in fresh[0].items():
        np.testing.assert_array_equal(value, fresh[1][column], err_msg=column)


# -- build_algo() starts Ray ---------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.own_ray  # a local instance inside the subprocess: it may run beside the Ray group
def test_build_algo_with_runner_actors_starts_ray_itself(tmp_path: Path) -> None:
    """README: `build_algo()` starts a local Ray instance if none is running; it lives until `ray.shutdown()`.

    RAY_ADDRESS names a port where nothing listens: Ray's own auto-init on the first actor would
    wait for that cluster until the timeout; rlrun's start ignores it and comes up locally.
    """
    env = ENV | {"RAY_ADDRESS": "127.0.0.1:9"}
    proc = _ok([sys.executable, "-c", BUILD_ALGO_WITH_A_RUNNER_ACTOR], tmp_path, env=env, timeout=300)
    state = json.loads(proc.stdout.splitlines()[-1])
    assert state == {"before": False, "after_build": True, "after_stop": True, "after_shutdown": False,
                     "steps": state["steps"], "runners": 1}
    assert state["steps"] > 0

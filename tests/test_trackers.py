"""`logger=mlflow` and `logger=wandb` through the real CLI, read back the way a user would.

MLflow: a real `mlflow server` on a free loopback port (started once for the module, in the
background while the other tests run), read back through `MlflowClient`; the local file store
for a sweep. W&B: offline mode, read back from the run's own `.wandb` file (W&B's public API
needs its server). Every run is tiny (2 iterations of 64 env steps).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RLRUN

from rlrun.cli import EXIT_USAGE
from rlrun.run.recorder import read_metrics
from rlrun.run.trackers.base import TRACKERS_FILE

TINY = ("algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1", "evaluation.episodes=2",
        "stop.iterations=2", "logger.console=plain")
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_mlflow = pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow package (make install)")
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="needs wandb (make install)")


def rlrun(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`rlrun <args>` run from cwd, W&B's own folders (cache, config, staging) kept under cwd."""
    wandb_dirs = {f"WANDB_{name}_DIR": str(cwd / f"wandb-{name.lower()}") for name in ("CACHE", "CONFIG", "DATA")}
    full_env = {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"} | wandb_dirs | (env or {})
    return subprocess.run([RLRUN, *args], capture_output=True, text=True, timeout=240, cwd=cwd, env=full_env)


def saved_run_id(run_dir: Path, kind: str) -> str:
    return json.loads((run_dir / TRACKERS_FILE).read_text())[kind]["run_id"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- MLflow --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _mlflow_server_process(tmp_path_factory) -> Iterator[tuple[subprocess.Popen, str] | None]:
    """Starts `mlflow server` as soon as the module starts (it takes ~20 s on 2 cores); stopped after."""
    if not HAS_MLFLOW:
        yield None
        return
    root, port = tmp_path_factory.mktemp("mlflow-server"), free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", str(root / "store"), "--artifacts-destination", str(root / "artifacts")]
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    env = os.environ | {"MLFLOW_ALLOW_FILE_STORE": "true"}
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    yield server, f"http://127.0.0.1:{port}"
    os.killpg(server.pid, signal.SIGTERM)  # its own process group: uvicorn and its worker
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module", autouse=True)
def _start_mlflow_server_early(_mlflow_server_process) -> None:
    """Every test of the module asks for the server process, so it starts before the first test."""


@pytest.fixture
def mlflow_server(_mlflow_server_process) -> str:
    """The server's URI, once it answers."""
    server, uri = _mlflow_server_process
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, "mlflow server exited; see its server.log"
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return uri
        except OSError:
            time.sleep(0.5)
    pytest.fail("mlflow server did not answer within 120 s")


@needs_mlflow
def test_mlflow_sweep_in_the_local_file_store_groups_its_jobs(tmp_path: Path, monkeypatch):
    """The default tracking URI ./mlruns: one child run per job under one parent run, tagged with the sweep."""
    from mlflow.tracking import MlflowClient

    sweep_dir = tmp_path / "sweep"
    proc = rlrun("-m", "logger=mlflow", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(str(tmp_path / "mlruns"))
    experiment = client.get_experiment_by_name("rlrun")
    runs = {run.info.run_id: run for run in client.search_runs([experiment.experiment_id])}
    jobs = {job: runs[saved_run_id(sweep_dir / job, "mlflow")] for job in ("0", "1")}
    parents = {run.data.tags["mlflow.parentRunId"] for run in jobs.values()}
    assert len(parents) == 1 and len(runs) == 3  # two jobs and their parent
    parent = runs[parents.pop()]
    assert parent.info.run_name == "sweep" and parent.info.status == "FINISHED"
    for job, run in jobs.items():
        assert run.data.tags["sweep"] == "sweep"
        assert run.info.run_name.startswith(f"{job}: seed={job} algo.train_batch_size=64")
        assert run.data.params["seed"] == job
        assert len(client.get_metric_history(run.info.run_id, "training_iteration")) == 2


@needs_mlflow
def test_unreachable_tracking_server_is_one_line_before_anything_starts(run_cli, tmp_path: Path):
    proc = run_cli("logger=mlflow", f"logger.tracking_uri=http://127.0.0.1:{free_port()}", *TINY)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.startswith("rlrun: error: the MLflow tracking server at http://127.0.0.1:")
    assert "does not answer" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run directory, no ./mlruns


def test_default_logger_never_imports_a_tracker_and_a_missing_package_names_the_extra_to_install(tmp_path: Path):
    """One Python process checks both (each costs an rlrun import):

    rlrun's start-up time: the tracker packages load only when a run selects one. Then, as if mlflow were not
    installed (`sys.modules[name] = None` makes its import fail; it was not imported yet, as just printed),
    logger=mlflow names the extra to install.
    """
    script = ("import sys, rlrun.cli, rlrun.run.experiment, rlrun.run.trackers; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'wandb')), flush=True); "
              "sys.modules['mlflow'] = None; from rlrun.cli import main; "
              f"sys.argv = ['rlrun', 'logger=mlflow', 'hydra.run.dir={tmp_path / 'run'}']; main()")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.stdout.splitlines()[0] == "[]", proc.stdout + proc.stderr
    assert proc.returncode == EXIT_USAGE, proc.stderr
    # rlrun is installed from a clone: the hint names the extra's packages and the extra as a clone installs it.
    assert proc.stderr.startswith("rlrun: error: logger=mlflow needs the mlflow package: pip install 'mlflow<")
    assert "rlrun's 'mlflow' extra: pip install '.[mlflow]' in rlrun's clone" in proc.stderr
    assert "rlrun[" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@needs_mlflow
def test_mlflow_server_gets_params_metrics_artifacts_and_resume_continues_the_run(mlflow_server: str, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    args = ("logger=mlflow", f"logger.tracking_uri={mlflow_server}", "logger.experiment=cartpole")
    proc = rlrun(*args, *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_id = saved_run_id(run_dir, "mlflow")
    assert f"MLflow run {run_id}" in proc.stdout

    client = MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert client.get_experiment(run.info.experiment_id).name == "cartpole"
    assert {"algo": "ppo", "env": "CartPole-v1", "seed": "0"}.items() <= run.data.tags.items()
    params = run.data.params
    assert params["algo.lr"] == "0.0003" and params["env.id"] == "CartPole-v1"
    assert params["algo.train_batch_size"] == "64" and params["algo.lr_schedule"] == "null"
    history = client.get_metric_history(run_id, "num_env_steps_sampled_lifetime")
    rows = read_metrics(run_dir)
    assert [(m.step, m.value) for m in history] == [(r["training_iteration"], r["num_env_steps_sampled_lifetime"])
                                                    for r in rows]
    assert run.data.metrics["evaluation/episode_return_mean"] == rows[-1]["evaluation/episode_return_mean"]
    assert {a.path for a in client.list_artifacts(run_id)} == {"learning_curve.png", "checkpoints"}
    checkpoint = {a.path for a in client.list_artifacts(run_id, "checkpoints/final")}
    assert "checkpoints/final/algorithm_state.json" in checkpoint

    proc = rlrun(f"resume={run_dir}", "stop.iterations=3", "logger.console=plain", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert saved_run_id(run_dir, "mlflow") == run_id
    assert [m.step for m in client.get_metric_history(run_id, "training_iteration")] == [1, 2, 3]
    assert len(client.search_runs([run.info.experiment_id])) == 1
    assert client.get_run(run_id).info.status == "FINISHED"


# --- Weights & Biases ----------------------------------------------------------------------------------


def wandb_records(run_file: Path) -> Iterator[Any]:
    """The records of a `.wandb` file: W&B's 7-byte header, then a LevelDB-style log of protobuf records.

    The log is 32 KiB blocks of chunks (crc32 4 bytes, length 2, type 1: full, first, middle, last).
    """
    from wandb.proto.wandb_internal_pb2 import Record

    data, block = run_file.read_bytes(), 32 * 1024
    assert data[:4] == b":W&B", data[:7]
    pos, chunks = 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


def read_offline_run(offline_dir: Path) -> dict[str, Any]:
    """What an offline W&B run holds: the run record, config, history rows, summary, artifact files, exit."""
    out: dict[str, Any] = {"history": [], "summary": {}, "artifacts": []}
    for record in wandb_records(next(offline_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            out["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
        elif kind == "config":
            out["config"].update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            out["history"].append({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "summary":
            out["summary"].update({"/".join(u.nested_key) or u.key: json.loads(u.value_json)
                                   for u in record.summary.update})
        elif kind == "artifact":
            out["artifacts"] += [entry.path for entry in record.artifact.manifest.contents]
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


@needs_wandb
def test_wandb_offline_sweep_groups_jobs_and_resume_continues_the_run(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    proc = rlrun("-m", "logger=wandb", "logger.project=rlrun-test", "seed=0,1", *TINY,
                 f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    for job in ("0", "1"):
        job_dir = sweep_dir / job
        run_id = saved_run_id(job_dir, "wandb")
        (offline_dir,) = (job_dir / "wandb").glob(f"offline-run-*-{run_id}")
        run = read_offline_run(offline_dir)
        assert run["run"].run_id == run_id and run["run"].project == "rlrun-test"
        assert run["run"].run_group == "sweep"
        assert run["run"].display_name.startswith(f"{job}: seed={job} algo.train_batch_size=64")
        assert list(run["run"].tags) == ["ppo", "CartPole-v1"]
        assert run["config"]["seed"] == int(job) and run["config"]["algo.lr"] == 0.0003
        assert run["config"]["env.id"] == "CartPole-v1"
        rows = read_metrics(job_dir)
        assert [(h["_step"], h["num_env_steps_sampled_lifetime"]) for h in run["history"]] == [
            (r["training_iteration"], r["num_env_steps_sampled_lifetime"]) for r in rows]
        assert run["summary"]["evaluation/episode_return_mean"] == rows[-1]["evaluation/episode_return_mean"]
        assert {"learning_curve.png", "checkpoints/final/algorithm_state.json"} <= set(run["artifacts"])
        assert run["exit_code"] == 0

    job_dir = sweep_dir / "0"
    run_id = saved_run_id(job_dir, "wandb")
    proc = rlrun(f"resume={job_dir}", "stop.iterations=3", "logger.console=plain", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert saved_run_id(job_dir, "wandb") == run_id
    first, second = sorted((job_dir / "wandb").glob(f"offline-run-*-{run_id}"))  # `wandb sync` joins them
    resumed = read_offline_run(second)
    assert resumed["run"].run_id == run_id
    assert [h["_step"] for h in resumed["history"]] == [3]
    assert resumed["config"]["stop.iterations"] == 3


@needs_wandb
def test_wandb_online_without_a_server_is_one_line(run_cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    proc = run_cli("logger=wandb", "logger.mode=online", *TINY)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.startswith("rlrun: error: the W&B server at http://127.0.0.1:")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []

"""A lost node: a cluster of two nodes on this machine (a `ray start --head` and a second `ray start --address=...`
raylet), one env runner on each. Killing the second node's raylet loses every actor on it; the run replaces its
runner, waits for room and says so, and goes on once a node with room joins, as a cluster's autoscaler adds one."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import RLRUN, pythonpath_with_tests
from ray_head import driver_env, ray_head, ray_worker_node, raylet

# These tests start, join and stop Ray themselves: the session's shared instance must not be connected.
pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_disconnected")]
RUN = ["env_runners.num=2", "env_runners.num_envs_per_runner=2", "env_runners.sample_timeout_s=5",
       "algo.train_batch_size=128", "algo.minibatch_size=64", "algo.num_epochs=1", "stop.timesteps=null",
       "stop.iterations=1000000", "stop.time_s=40", "evaluation.episodes=1", "logger.console=plain"]


def rows(run_dir: Path) -> list[dict]:
    metrics = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_env_runner_of_a_lost_node_is_replaced_and_the_run_goes_on(tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "stderr.log"
    env = driver_env(RAY_AUTH_MODE="token", PYTHONPATH=pythonpath_with_tests())
    with ray_head(num_cpus=1) as head, ray_worker_node(head, num_cpus=1) as node:
        with open(log, "w") as err:
            run = subprocess.Popen([RLRUN, *RUN, f"ray.address={head.address}", f"hydra.run.dir={run_dir}"],
                                   cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: len(rows(run_dir)) >= 3, "3 iterations on both nodes")
            raylet(node).kill()
            wait_for(lambda: "still starting" in log.read_text(), "the run to say it waits for room")
            with ray_worker_node(head, num_cpus=1):
                assert run.wait(timeout=180) == 0, log.read_text()
        finally:
            run.kill()
    metrics = rows(run_dir)
    assert [row["training_iteration"] for row in metrics] == list(range(1, len(metrics) + 1))
    # One replacement, or two when Ray placed the first on the lost node before its GCS declared the node dead.
    assert metrics[-1]["fault_tolerance/num_remote_worker_restarts"] in (1, 2), log.read_text()
    assert metrics[-1]["env_runners/num_healthy_env_runners"] == 2
    assert "env runner" in log.read_text() and "restarting it" in log.read_text()

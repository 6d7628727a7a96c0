"""Joining a real cluster made by `ray start`: with `auto`, without the cluster's token, and where nobody listens.

The full run on a joined cluster (actors, the token sent by itself, the cluster left running) is in
test_ray_cli.py; the run's own Ray instance is in test_ray_session.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from conftest import RLRUN
from ray_head import Head, driver_env, free_port, ray_head, reconnect

from rlrun.algorithms.ppo import PPOConfig
from rlrun.cluster import ClusterError, cluster_session
from rlrun.config.schema import RaySchema

# These tests start, join and stop Ray themselves: the session's shared instance must not be connected.
pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_disconnected"),
              pytest.mark.xdist_group("ray_join")]  # the `ray start` head is made once, on one worker
# One short iteration: these tests are about getting a cluster, not about learning.
TINY = ["stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1",
        "logger.console=plain"]
TOKEN_FIX = ("copy the cluster's token (`ray get-auth-token` on its head node prints it) to ~/.ray/auth_token or "
             "set RAY_AUTH_TOKEN")


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    with ray_head(num_cpus=3) as h:
        yield h


def rlrun(args: list[str], tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([RLRUN, *args, *TINY, f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path, env=env)


def test_address_auto_joins_the_cluster_ray_start_made(head: Head, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_TMPDIR", head.tmpdir)  # where `ray start` recorded its address for `auto`
    config = PPOConfig()
    with cluster_session(RaySchema(address="auto"), config) as info:
        assert ray.is_initialized()
    assert not info.local and info.address.endswith(f":{head.port}")
    assert info.describe(config).startswith(f"Ray cluster {info.address} (3 CPUs, 0 GPUs): ")
    assert not ray.is_initialized()
    assert reconnect(head) == 3, "leaving a joined cluster stopped it"


@pytest.mark.parametrize(("auth", "cause"), [
    ("no token", f"the cluster requires token authentication and this machine has no token; {TOKEN_FIX}"),
    ("another token", f"the cluster refused this machine's Ray token (from RAY_AUTH_TOKEN); {TOKEN_FIX}"),
])
def test_joining_without_the_clusters_token_is_one_line(head: Head, tmp_path: Path, auth: str, cause: str) -> None:
    home = tmp_path / "home"  # as on another machine: no ~/.ray/auth_token
    home.mkdir()
    env = driver_env(HOME=str(home)) if auth == "no token" else driver_env(RAY_AUTH_TOKEN="not-the-cluster-token")
    done = rlrun([f"ray.address={head.address}"], tmp_path, env)
    assert done.returncode == 2, done.stderr
    # Ray's warning for every refused attempt stays off the console: stderr is the one line.
    assert done.stderr.strip().splitlines() == [f"rlrun: error: could not join ray.address={head.address}: {cause}"]
    assert not (tmp_path / "run").exists(), "a run that never started left a run directory"


def test_joining_a_port_nobody_serves_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = rlrun([f"ray.address=127.0.0.1:{port}"], tmp_path, driver_env())
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"rlrun: error: could not join ray.address=127.0.0.1:{port}: nothing answers there (Connection refused); "
        f"start a cluster with `ray start --head --port={port}` or correct ray.address"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("ray_cfg", "expected"), [
    (RaySchema(address="10.0.0.5:6379", num_cpus=4),
     "ray.num_cpus=4 sizes a local instance and cannot be combined with ray.address=10.0.0.5:6379"),
    (RaySchema(address="local"), "ray.address must be auto or host:port"),
])
def test_sizing_a_joined_cluster_or_a_malformed_address_is_one_line(ray_cfg: RaySchema, expected: str) -> None:
    with pytest.raises(ClusterError) as error, cluster_session(ray_cfg, PPOConfig()):
        pytest.fail("the session started")
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert not ray.is_initialized()

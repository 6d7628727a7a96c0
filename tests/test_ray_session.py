"""A run's own Ray instance, for real: sizing, loopback only, dashboard, resource checks, placement timeout.

Joining a cluster is tested in test_ray_join.py.
"""

from __future__ import annotations

import ipaddress
import os

import gymnasium as gym
import psutil
import pytest
import ray
from ray.util.placement_group import placement_group
from ray_head import process_tree

from rlrun.algorithms.ppo import PPOConfig
from rlrun.cluster import ClusterError, cluster_session
from rlrun.config.schema import RaySchema
from rlrun.core.learner import learner_actors

# These tests start and stop Ray themselves: the session's shared instance must not be connected.
pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_disconnected")]


def ppo(env_runners: int = 0, learners: int = 0) -> PPOConfig:
    return PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=env_runners).learners(
        num_learners=learners)


def has_dashboard_packages() -> bool:
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError:
        return False
    return True


def listening(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process name, IP, port) of every TCP socket the processes listen on."""
    return [(p.name(), c.laddr.ip, c.laddr.port) for p in processes for c in p.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN]


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, how a dual-stack socket shows it
    return (mapped or address).is_loopback


def test_local_instance_is_sized_for_the_run_and_listens_on_loopback_only() -> None:
    config = ppo(env_runners=3, learners=2)  # reserves 5 CPUs: more than a small machine has cores
    # This process's children from before the session (the tests' CLI fork server) are not the session's.
    before = {p.pid for p in process_tree(os.getpid())}
    with cluster_session(RaySchema(), config) as info:
        # 2 DDP learner actors: their workers listen, and learner 0 serves the process group's store.
        learners = config.build_learner_group(env=gym.make("CartPole-v1"))
        try:
            # GCS, raylet, agents, workers, and this process (the driver), which listens too.
            ray_processes = [psutil.Process()] + [p for p in process_tree(os.getpid()) if p.pid not in before]
            sockets = listening(ray_processes)
        finally:
            learners.stop()
    cpus = max(os.cpu_count() or 1, 5)
    assert info.local and info.address.startswith("127.0.0.1:")
    assert info.num_cpus == cpus
    assert info.dashboard_url is None  # ray.dashboard defaults to false
    assert info.describe(config).startswith(f"Ray local instance {info.address} (loopback only, {cpus} CPUs, ")
    assert {"gcs_server", "raylet"} <= {name for name, _, _ in sockets}, sockets
    assert [s for s in sockets if not is_loopback(s[1])] == [], "a Ray process listens beyond loopback"
    assert not ray.is_initialized()
    _, alive = psutil.wait_procs(ray_processes[1:], timeout=30)
    assert not alive, f"the session left Ray processes behind: {alive}"


def test_ray_num_cpus_and_num_gpus_replace_the_instance_sizing() -> None:
    config = ppo(learners=1)
    with cluster_session(RaySchema(num_cpus=3, num_gpus=1), config) as info:
        assert ray.cluster_resources()["CPU"] == 3
    assert (info.num_cpus, info.num_gpus) == (3, 1)
    layout = info.describe(config)
    assert "(loopback only, 3 CPUs, 1 GPUs): 1 local env runner, 1 learner actor (cpu, 1 thread)" in layout


def test_more_cpus_than_the_instance_has_is_one_line() -> None:
    with pytest.raises(ClusterError) as error, cluster_session(RaySchema(num_cpus=1), ppo(env_runners=2)):
        pytest.fail("the session started although the run needs more CPUs than the instance has")
    message = str(error.value)
    assert "\n" not in message
    # Known before the instance starts: the run fails without starting Ray.
    assert "env_runners.num=2" in message and "needs 2 CPUs" in message \
        and "the local Ray instance would have 1; lower them or set ray.num_cpus" in message
    assert not ray.is_initialized(), "the instance outlived the failed session"


def test_learners_that_cannot_be_placed_fail_after_the_placement_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learner_actors, "PLACEMENT_TIMEOUT_S", 1.0)  # never placeable: any timeout holds
    config = ppo(learners=2)
    # The cluster has the 2 CPUs the learners reserve, but another job holds one of them: a busy cluster.
    with cluster_session(RaySchema(num_cpus=2), config):
        other_job = placement_group([{"CPU": 1}])
        assert other_job.wait(timeout_seconds=30)
        with pytest.raises(ClusterError) as error:
            config.build_learner_group(env=gym.make("CartPole-v1"))
        table = ray.util.placement_group_table()
        learners = [pg["state"] for pg_id, pg in table.items() if pg_id != other_job.id.hex()]
    assert "could not place learners.num=2 learners" in str(error.value) and "within 1 s" in str(error.value)
    assert learners == ["REMOVED"], "the unplaceable placement group was left waiting"


@pytest.mark.skipif(has_dashboard_packages(), reason="Ray's dashboard packages are installed")
def test_dashboard_without_its_packages_is_one_line_before_ray_starts() -> None:
    with pytest.raises(ClusterError) as error, cluster_session(RaySchema(dashboard=True), ppo(learners=1)):
        pytest.fail("the session started without the dashboard")
    assert "ray.dashboard=true" in str(error.value) and "pip install 'ray[default]'" in str(error.value)
    assert not ray.is_initialized()


@pytest.mark.skipif(not has_dashboard_packages(), reason="Ray's dashboard packages are not installed")
def test_dashboard_is_served_on_loopback() -> None:
    config = ppo(learners=1)
    with cluster_session(RaySchema(dashboard=True), config) as info:
        pass
    assert info.dashboard_url.startswith("127.0.0.1:")
    assert f"dashboard http://{info.dashboard_url}" in info.describe(config)

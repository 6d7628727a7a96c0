"""The Ray cluster behind remote EnvRunners and Learner actors: start or join it, check it, leave it."""

from rlrun.cluster.base import ClusterError
from rlrun.cluster.session import ClusterInfo, RunResources, cluster_session, ensure_ray

__all__ = ["ClusterError", "ClusterInfo", "RunResources", "cluster_session", "ensure_ray"]

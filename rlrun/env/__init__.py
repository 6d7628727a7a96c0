"""Sampling: env creation, EnvRunner (one vector env), EnvRunnerGroup (all of them)."""

from rlrun.env.env_creation import EnvError, make_vector_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_runner_group import EnvRunnerGroup

__all__ = ["EnvError", "EnvRunner", "EnvRunnerGroup", "make_vector_env"]

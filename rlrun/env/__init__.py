"""Sampling: env specs and creation, EnvRunner (one vector env), EnvRunnerGroup (all of them)."""

from rlrun.env.env_creation import make_env, make_vector_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_runner_group import EnvRunnerGroup
from rlrun.env.env_spec import AtariSpec, EnvError, EnvSpec, WrapperSpec

__all__ = ["AtariSpec", "EnvError", "EnvRunner", "EnvRunnerGroup", "EnvSpec", "WrapperSpec", "make_env",
           "make_vector_env"]

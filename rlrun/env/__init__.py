"""Sampling: env specs and creation, EnvRunner (one vector env), EnvRunnerGroup (all of them), and the specs
they are built from."""

from rlrun.env.env_creation import make_env, make_vector_env
from rlrun.env.env_runner import EnvRunner
from rlrun.env.env_runner_group import EnvRunnerGroup
from rlrun.env.env_spec import AtariSpec, EnvError, EnvSpec, WrapperSpec
from rlrun.env.runner_spec import EnvRunnerGroupSpec, EnvRunnerSpec, NormalizationSpec

__all__ = ["AtariSpec", "EnvError", "EnvRunner", "EnvRunnerGroup", "EnvRunnerGroupSpec", "EnvRunnerSpec", "EnvSpec",
           "NormalizationSpec", "WrapperSpec", "make_env", "make_vector_env"]

"""rlrun: a command-line experiment runner for reinforcement learning.

The Python API mirrors Ray RLlib's new API stack (AlgorithmConfig, Algorithm,
Learner, LearnerGroup, EnvRunner); the CLI composes the same objects from Hydra
configs. Heavy imports (torch, ray) stay out of this module so `rlrun --help`
and config errors answer fast.
"""

import os

__version__ = "0.1.0"

# Bitwise-reproducible float math from MKL (torch's CPU BLAS) whatever the memory alignment: on AVX-512 CPUs its
# default picks kernels by the alignment of each matrix, which differs between processes, so a resumed run's first
# forward passes differed from the straight run's in the last bits (and an action could flip). STRICT keeps the
# fastest instruction set; set before torch's first BLAS call, and inherited by Ray's workers.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

# The Python API (rlrun/api.py, rlrun/policy.py), imported on first use: `import rlrun` stays light.
_API = {"train": "rlrun.api", "RunResult": "rlrun.api", "load": "rlrun.policy", "Policy": "rlrun.policy"}
__all__ = ["Policy", "RunResult", "__version__", "load", "train"]


def __getattr__(name: str) -> object:
    """`rlrun.train`, `rlrun.load`, ...: their modules are imported when first asked for (PEP 562)."""
    from rlrun.lazy import lazy_attribute

    return lazy_attribute(__name__, _API, name)

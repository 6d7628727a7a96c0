"""rlrun: a command-line experiment runner for reinforcement learning.

The Python API mirrors Ray RLlib's new API stack (AlgorithmConfig, Algorithm,
Learner, LearnerGroup, EnvRunner); the CLI composes the same objects from Hydra
configs. Heavy imports (torch, ray) stay out of this module so `rlrun --help`
and config errors answer fast.
"""

__version__ = "0.1.0"

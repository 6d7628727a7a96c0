"""Config schemas, registration with Hydra, and validation errors."""

from rlrun.config.errors import ConfigError

__all__ = ["ConfigError"]

"""What starting and joining Ray share: the error type and a `ray.init` that keeps Ray's chatter off the console."""

from __future__ import annotations

import logging
from typing import Any

from rlrun.config.errors import ConfigError


class ClusterError(ConfigError):
    """The Ray cluster cannot be reached or cannot host what the config asks for."""


def silence_token_notice() -> None:
    """Ray announces on every start or join that token authentication is on (it is); keep that off the console."""
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def ray_init(**kwargs: Any) -> Any:
    """`ray.init` with Ray's own logging at WARNING and worker output kept in the session's log files.

    Returns Ray's context (address, dashboard URL).
    """
    import ray

    silence_token_notice()
    return ray.init(logging_level=logging.WARNING, log_to_driver=False, **kwargs)

"""The Hydra side of `hydra/launcher=ray`: its config node and the Launcher that hands jobs to `_core`.

Hydra imports every module under `hydra_plugins` at start-up, so neither this module nor `_core`
imports Ray (or torch) at import time: they load only when a sweep uses this launcher. (No
`from __future__ import annotations`: Hydra's plugin scan imports this module outside sys.modules,
where dataclasses cannot resolve string annotations.)
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class RayLauncherConf:
    """No settings of its own: the cluster is the sweep's `ray.*` keys, each job's resources its own config's."""

    _target_: str = "hydra_plugins.rlrun_ray_launcher.ray_launcher.RayLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="ray", node=RayLauncherConf, provider="rlrun")


class RayLauncher(Launcher):
    """Runs each job of a sweep batch as a Ray task, as many at a time as the cluster holds (see `_core`)."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.rlrun_ray_launcher import _core

        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        return _core.launch(self.config, self.hydra_context, self.task_function, job_overrides, initial_job_idx)

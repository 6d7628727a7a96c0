"""The Hydra side of `hydra/sweeper=tune`: settings and their defaults; the study itself is rlrun.tune.sweeper.

Hydra imports every module under `hydra_plugins` at start-up, so this one imports
nothing of Ray: Tune is loaded only when a study runs. (No `from __future__ import annotations`:
Hydra's plugin scan imports this module outside sys.modules, where dataclasses cannot resolve
string annotations; `int | None` is evaluated instead, which Python >= 3.10 can.)
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


@dataclass
class SchedulerConf:
    """fifo: every trial to its stop criteria; asha: stop the worst early; pbt: exploit and perturb."""

    type: str = "fifo"
    # What max_t, grace_period and perturbation_interval count: training_iteration,
    # num_env_steps_sampled_lifetime or time_total_s.
    time_attr: str = "training_iteration"
    max_t: int = 100  # asha: no trial runs past this
    grace_period: int = 1  # asha: the first rung
    reduction_factor: float = 3  # asha: 1/reduction_factor of the trials go on at each rung
    perturbation_interval: int = 5  # pbt
    quantile_fraction: float = 0.25  # pbt: the bottom (and top) fraction
    resample_probability: float = 0.25  # pbt: resample a parameter instead of perturbing it


@dataclass
class TuneSweeperConf:
    _target_: str = "hydra_plugins.rlrun_tune_sweeper.tune_sweeper.TuneSweeper"
    num_samples: int = 16
    metric: str = "env_runners/episode_return_mean"
    mode: str = "max"
    search_alg: str = "random"  # random | optuna (Optuna's TPE through Tune)
    seed: int | None = 0
    # null: as many trials at a time as the cluster's CPUs hold (each trial: 1 + its actors' CPUs)
    max_concurrent_trials: int | None = None
    scheduler: SchedulerConf = field(default_factory=SchedulerConf)
    # Search space in the Optuna sweeper's syntax: `algo.lr: tag(log, interval(1e-4, 1e-2))`.
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="tune", node=TuneSweeperConf, provider="rlrun")


class TuneSweeper(Sweeper):
    """Runs `rlrun.tune.sweeper.run_study` with the command's overrides."""

    def __init__(self, **settings: Any) -> None:
        self.settings = {k: OmegaConf.to_container(v) if isinstance(v, DictConfig) else v for k, v in settings.items()}
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config

    def sweep(self, arguments: list[str]) -> None:
        from rlrun.tune.sweeper import run_study

        assert self.config is not None, "setup() comes first"
        run_study(self.config, arguments, self.settings)

"""Offline runs evaluate in the env their dataset was recorded in, unless the command names another.

`rlrun algo=bc offline.dataset=data/acrobot-expert-v0` should not need `env=acrobot`:
the dataset's metadata says where it came from (rlrun's own recording keeps the env
config too; other Minari datasets have their gymnasium env spec). The resolved env
is written back into the run's `.hydra/config.yaml`, so `rlrun-eval` and `resume=`
see the env the run really used.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.offline import OfflineConfig
from rlrun.algorithms.registry import get_algorithm_config_class
from rlrun.config.errors import ConfigError
from rlrun.run.checkpoints import RUN_CONFIG

ENV_KEYS = ("env", "env.id")


def apply_dataset_env(cfg: DictConfig, run_dir: Path) -> None:
    """Set `cfg.env` from the dataset of an offline run whose command line sets no env."""
    if cfg.offline.dataset is None or not issubclass(get_algorithm_config_class(cfg.algo.name), OfflineConfig):
        return
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    if any(o.lstrip("+~").partition("=")[0] in ENV_KEYS for o in overrides):
        return
    from rlrun.data.offline.dataset import OfflineDataError, dataset_info, rlrun_metadata

    try:
        info = dataset_info(cfg.offline.dataset)
    except OfflineDataError as e:
        raise ConfigError(str(e)) from None
    recorded = rlrun_metadata(info)
    env_id = recorded.get("env", info.env_id)
    if env_id is None or env_id == cfg.env.id:
        return
    cfg.env.id = env_id
    cfg.env.env_config = recorded.get("env_config", {})
    cfg.env.max_episode_steps = recorded.get("max_episode_steps")
    if (run_dir / RUN_CONFIG).is_file():
        OmegaConf.save(cfg, run_dir / RUN_CONFIG)

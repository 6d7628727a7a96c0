"""Checks of a composed run config beyond what each algorithm's builder checks: known keys, stop criteria,
checkpoints, evaluation, logging, and sections an override could not fill."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from rlrun.config.errors import ConfigError, check
from rlrun.config.fields import check_fields
from rlrun.config.keys import check_known_keys, null_section_message
from rlrun.config.schema import LOGGER_SCHEMAS, LoggerSchema, RunSchema, registered_algorithm_schemas


def validate_run(cfg: DictConfig) -> None:
    """Every key is one the schemas define; then the run-level keys beside the algorithm: stop criteria,
    checkpoints, evaluation, logging.

    Their ranges are the schemas' (`bounds=` on RunSchema's sections and the logger's schema), checked by
    `check_fields`, and so are the `algo` keys' one-key ranges: a CLI run refuses them here, before it imports
    the algorithm (torch). The relations between keys and the algorithm's other sections (env, env_runners,
    learners, model) are checked by `AlgorithmConfig.validate`, which the Python builder runs too (the `algo`
    ranges included).
    """
    check_known_keys(cfg)
    _check_null_sections(cfg)
    stop = cfg.stop
    check(any(v is not None for v in stop.values()), "set at least one stop criterion (stop.timesteps, "
          "stop.iterations, stop.time_s or stop.return_mean)", dict(stop))
    check_fields(RunSchema, lambda name: cfg[name], "")
    check_fields(LOGGER_SCHEMAS.get(cfg.logger.get("name"), LoggerSchema), lambda name: cfg.logger[name], "logger")
    check_fields(registered_algorithm_schemas()[cfg.algo.name], lambda name: cfg.algo[name], "algo")


def _check_null_sections(cfg: DictConfig) -> None:
    """`env.atari={}` on a config whose env.atari is null leaves it null (OmegaConf cannot fill a null section
    from an override): refuse it rather than run without the section the command line asked for."""
    from hydra.core.hydra_config import HydraConfig

    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        message = null_section_message([f"{key}={value}"])
        if message and OmegaConf.select(cfg, key) is None and value.strip() not in ("null", ""):
            raise ConfigError(message)

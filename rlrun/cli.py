"""Console entry point `rlrun`: Hydra composes the config, `run_experiment` does the work.

User mistakes -- a bad override, an unknown env, an out-of-range value -- end
in one line `rlrun: error: ...` and exit status 2, never a traceback. Set
`RLRUN_DEBUG=1` to see the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from rlrun.config.errors import ConfigError
from rlrun.config.schema import register_schemas

EXIT_USAGE = 2
_NOISE = ("full_key:", "object_type=", "reference_type=", "Set the environment variable", "Config search path")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def _train(cfg: DictConfig) -> float | None:
    from rlrun.core.checkpointing import CheckpointError
    from rlrun.run.experiment import run_experiment

    try:
        return run_experiment(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (ConfigError, CheckpointError) as e:
        # Reported here: past this point Hydra would add its own "Error executing job" line.
        _exit_with_error(e)


def _exit_with_error(error: BaseException) -> NoReturn:
    if os.environ.get("RLRUN_DEBUG"):
        raise error
    print(f"rlrun: error: {one_line(error)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def one_line(error: BaseException) -> str:
    """Hydra/OmegaConf messages span several lines; keep what names the problem, on one line."""
    texts = [str(error)]
    if error.__cause__ is not None and str(error.__cause__) not in texts[0]:
        texts.append(str(error.__cause__))
    parts: list[str] = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("Config search path"):
                break
            if line and not line.startswith(_NOISE):
                parts.append(line.rstrip(".:"))
    return "; ".join(dict.fromkeys(parts))


def main() -> None:
    from rlrun.core.checkpointing import CheckpointError
    from rlrun.run.resume import resume_argv

    # Let Hydra's exceptions reach us instead of being printed with a stack trace.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    register_schemas()
    try:
        # `resume=<dir>`: Hydra recomposes the run's own config, into the run's own directory.
        sys.argv[1:] = resume_argv(sys.argv[1:])
        _train()
    except (ConfigError, CheckpointError, HydraException, OmegaConfBaseException) as e:
        _exit_with_error(e)
    except KeyboardInterrupt:
        print("rlrun: interrupted; the final checkpoint was written", file=sys.stderr)
        sys.exit(130)

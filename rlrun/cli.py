"""Console entry point `rlrun`: Hydra composes the config, `run_experiment` does the work.

User mistakes -- a bad override, an unknown env, an out-of-range value, flags
that do not go together -- end in one line `rlrun: error: ...` and exit status 2,
never a traceback, and leave no directory behind. Set `RLRUN_DEBUG=1` to see the
full traceback instead. `rlrun --help` is rlrun's own page (rlrun/cli_help.py);
`rlrun --hydra-help` is Hydra's.

In a sweep (`rlrun -m ...`) a failed job does not end the sweep: its directory
keeps `error.txt`, the remaining jobs run, and at the end rlrun prints one line
per failed job and exits with status 1.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import hydra
from hydra._internal.utils import get_args_parser  # Hydra's flag parser: read --help, -m, --cfg as Hydra will
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from rlrun.algorithms.registry import algorithm_schemas
from rlrun.cli_dirs import remove_new_dirs
from rlrun.config.errors import ConfigError
from rlrun.config.keys import free_form_overrides, null_section_message, override_key, unknown_key_message
from rlrun.config.schema import register_schemas

EXIT_USAGE = 2
EXIT_JOBS_FAILED = 1
# main() names a file here; each failed sweep job appends a JSON line to it. Sweep jobs may run in
# other processes (the parallel launcher), so a file is what they and main() can both reach.
FAILED_JOBS_ENV = "RLRUN_FAILED_JOBS_FILE"
log = logging.getLogger("rlrun")
_NOISE = ("full_key:", "object_type=", "reference_type=", "Set the environment variable", "Config search path")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def _train(cfg: DictConfig) -> float | None:
    from rlrun.run.job import run_experiment

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        objective = run_experiment(cfg, run_dir)
    except Exception as e:
        user_error = _is_user_error(e)
        if hydra_cfg.mode == RunMode.MULTIRUN and not os.environ.get("RLRUN_DEBUG"):
            # Hydra's sweepers stop at a job that raises (the basic one after its batch, Optuna at once).
            _record_failed_job(hydra_cfg, run_dir, e, user_error)
            # No objective: the basic sweeper ignores it, Optuna marks the trial failed and goes on.
            return None
        if user_error:
            # Reported here: past this point Hydra would add its own "Error executing job" line.
            _exit_with_error(e)
        raise
    # Sweepers keep only the best objective (Optuna); the run's log keeps every job's.
    log.info("objective for sweepers: %r", objective)
    return objective


def _is_user_error(error: Exception) -> bool:
    """Errors whose message says all (an env that keeps crashing names itself and the restart limit; a loss that
    stays non-finite names the iteration and its term).

    The env runners' error is imported only for an error of another kind: its module imports the envs and
    torch, which a config error, refused before the run imported them, should not pay for.
    """
    from rlrun.core.checkpointing import CheckpointError

    if isinstance(error, (ConfigError, CheckpointError)):
        return True
    from rlrun.core.learner.failures import LearnerFailure, NonFiniteUpdateError
    from rlrun.env.env_runner_actors import EnvRunnerFailure

    return isinstance(error, (EnvRunnerFailure, LearnerFailure, NonFiniteUpdateError))


def _record_failed_job(hydra_cfg: HydraConf, run_dir: Path, error: Exception, user_error: bool) -> None:
    """Keep a failed sweep job's error in its directory and in the list that main() reports at the end.

    A user mistake is one line, as in a single run; anything else is a crash, so its traceback
    goes to the job's log (and the console) while the sweep goes on.
    """
    message = one_line(error) if user_error else f"{type(error).__name__}: {one_line(error)}"
    if not user_error:
        log.error("job %s failed", hydra_cfg.job.num, exc_info=error)
    run_dir.mkdir(parents=True, exist_ok=True)  # a config error has removed it
    (run_dir / "error.txt").write_text(message + "\n")
    record = {"job": hydra_cfg.job.num, "overrides": " ".join(hydra_cfg.overrides.task), "error": message}
    with open(os.environ[FAILED_JOBS_ENV], "a") as f:  # one short line per write: concurrent appends stay whole
        f.write(json.dumps(record) + "\n")


def _exit_if_jobs_failed(failed_jobs_file: Path) -> None:
    """End a sweep that had failed jobs with one line per job and status 1."""
    if not failed_jobs_file.exists():
        return
    records = [json.loads(line) for line in failed_jobs_file.read_text().splitlines()]
    for r in sorted(records, key=lambda r: r["job"]):
        print(f"rlrun: error: job {r['job']} ({r['overrides']}) failed: {r['error']}", file=sys.stderr)
    sys.exit(EXIT_JOBS_FAILED)


def _exit_with_error(error: BaseException) -> NoReturn:
    """One line, status 2, and none of the directories Hydra made for the rejected command."""
    if os.environ.get("RLRUN_DEBUG"):
        raise error
    remove_new_dirs()
    print(f"rlrun: error: {one_line(error)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _check_flags(argv: list[str]) -> None:
    """Answer `--help` with rlrun's own page; reject flag combinations Hydra ends in a ValueError traceback."""
    args, _ = get_args_parser().parse_known_args(argv)
    if args.help:
        from rlrun.cli_help import rlrun_help

        print(rlrun_help())
        sys.exit(0)
    commands = {"--run": args.run, "--multirun": args.multirun, "--cfg": args.cfg is not None,
                "--info": args.info is not None, "--shell-completion": args.shell_completion}
    given = [flag for flag, on in commands.items() if on]
    if {"--multirun", "--cfg"} <= set(given):
        raise ConfigError("-m/--multirun and --cfg cannot be combined: a sweep has one config per job; print one "
                          "job's with `rlrun --cfg job key=value ...`, one value per key")
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} cannot be combined: give one of {', '.join(commands)}")
    if args.resolve and args.cfg is None:
        raise ConfigError("--resolve only goes with --cfg (rlrun --cfg job --resolve)")


def _unknown_key_error(error: BaseException) -> BaseException:
    """Hydra refuses an override of a key that does not exist with the advice to add it with `+`, which
    would only hide the typo (rlrun refuses the added key too): name the closest valid keys instead."""
    refused = re.match(r"Could not override '([^']+)'", str(error))
    if refused and isinstance(error.__cause__, (ConfigAttributeError, ConfigKeyError)):
        # The config was not composed: the algorithm is the command line's `algo=`, else any algorithm's keys.
        algo = next((arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("algo=")), None)
        return ConfigError(unknown_key_message(refused.group(1), {"algo": {"name": algo}}))
    return error


def _in_hydra_overrides(error: BaseException) -> bool:
    """Whether `error` was raised while Hydra applied the command line's overrides to the composed config."""
    import traceback

    return any(frame.name == "_apply_overrides_to_config" for frame in traceback.extract_tb(error.__traceback__))


def one_line(error: BaseException) -> str:
    """Hydra/OmegaConf messages span several lines; keep what names the problem, on one line."""
    error = _unknown_key_error(error)
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


def _resume_argv(argv: list[str]) -> list[str]:
    """`resume=<dir>` -> the command line Hydra should see (rlrun.run.resume). That module reads checkpoints
    with torch, so a command line that does not resume does not pay for importing it."""
    if all(override_key(arg) != "resume" for arg in argv):
        return argv
    from rlrun.run.resume import resume_argv

    return resume_argv(argv)


def main() -> None:
    from rlrun.core.checkpointing import CheckpointError
    from rlrun.run.interrupts import ImmediateInterrupt

    # Let Hydra's exceptions reach us instead of being printed with a stack trace.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    register_schemas(algorithm_schemas())
    with tempfile.TemporaryDirectory(prefix="rlrun-") as tmp:
        failed_jobs_file = Path(tmp) / "failed_jobs.jsonl"
        os.environ[FAILED_JOBS_ENV] = str(failed_jobs_file)
        try:
            _check_flags(sys.argv[1:])
            # `resume=<dir>`: Hydra recomposes the run's own config, into the run's own directory.
            sys.argv[1:] = free_form_overrides(_resume_argv(sys.argv[1:]))
            _train()
        except (ConfigError, CheckpointError, HydraException, OmegaConfBaseException) as e:
            _exit_with_error(e)
        except (AssertionError, AttributeError, ValueError) as e:
            # OmegaConf's bare errors for an override inside a null section (env.atari.frame_stack=2 without env.atari)
            message = null_section_message(sys.argv[1:]) if _in_hydra_overrides(e) else None
            if message is None:
                _exit_if_jobs_failed(failed_jobs_file)  # Optuna's ValueError once every trial failed: see below
                raise
            _exit_with_error(ConfigError(message))
        except ImmediateInterrupt:
            print("rlrun: interrupted mid-iteration; resume from the last periodic checkpoint", file=sys.stderr)
            sys.exit(130)
        except KeyboardInterrupt:
            print("rlrun: interrupted; the final checkpoint was written", file=sys.stderr)
            sys.exit(130)
        except Exception:
            # A sweeper may give up once every job failed (Optuna: "No trials are completed yet");
            # then the jobs' own errors are the ones to show.
            _exit_if_jobs_failed(failed_jobs_file)
            raise
        _exit_if_jobs_failed(failed_jobs_file)
    # Free what the run left in reference cycles now, while every module is whole: an env in a cycle
    # (a user's env, a wrapper) that holds a native handle (ALE's ALEInterface) is freed, in order,
    # only by a collection, and one frozen below would outlive its extension module at exit
    # ("nanobind: leaked ..." on stderr). Then freeze the survivors: the interpreter's last collections
    # walk every object torch, Hydra and matplotlib created (about 1 s of CPU) and free nothing more.
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    # `python -m rlrun.cli`: run the importable rlrun.cli, not this __main__ copy, so that Hydra finds the configs
    # as it does for `rlrun` (the package rlrun.conf, not a file path) and the run records the same sources.
    from rlrun.cli import main as cli_main

    cli_main()

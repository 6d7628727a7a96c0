"""Console entry point `rlrun-eval`: evaluate a checkpoint's greedy policy.

    rlrun-eval checkpoint=<run dir or checkpoint dir> [episodes=10] [seed=<int>]
               [video=true] [video_episodes=1] [video_format=auto|mp4|gif]

Arguments are Hydra-style `key=value` pairs. Prints the return mean / std / min /
max and the episode lengths, and writes `eval_<time>.json` (and with
`video=true` a file in `videos/`) into the run directory. As with `rlrun`, a
mistake ends in one line `rlrun-eval: error: ...` and exit status 2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, NoReturn

from rlrun.config.errors import ConfigError
from rlrun.core.checkpointing import CheckpointError
from rlrun.env.env_creation import EnvError
from rlrun.run.evaluation import EvalRequest, evaluate_checkpoint
from rlrun.run.video import VIDEO_FORMATS

EXIT_USAGE = 2
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_args(argv: list[str]) -> EvalRequest:
    """`key=value` arguments -> an EvalRequest; unknown keys and bad values raise ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(EvalRequest)}
    allowed = ", ".join(fields)
    values: dict[str, Any] = {}
    for arg in argv:
        key, sep, text = arg.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"unknown argument '{arg}'; rlrun-eval takes key=value with keys {allowed}")
        values[key] = _convert(key, text, fields[key].type)
    if "checkpoint" not in values:
        raise ConfigError("checkpoint=<run dir or checkpoint dir> is required")
    for key in ("episodes", "video_episodes"):
        if values.get(key, 1) < 1:
            raise ConfigError(f"{key} must be >= 1 (got {values[key]})")
    if values.get("video_format", "auto") not in VIDEO_FORMATS:
        raise ConfigError(f"video_format must be one of {', '.join(VIDEO_FORMATS)} (got {values['video_format']!r})")
    return EvalRequest(**values)


def _convert(key: str, text: str, annotation: str) -> Any:
    """The value of `key=text` as the EvalRequest field's type (annotations are strings here)."""
    if annotation == "bool":
        if text.lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{key} must be true or false (got {text!r})")
        return text.lower() in _TRUE
    if annotation.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key} must be an integer (got {text!r})") from None
    return text


def main() -> None:
    try:
        report = evaluate_checkpoint(parse_args(sys.argv[1:]))
    except (ConfigError, CheckpointError, EnvError) as e:
        _exit_with_error(e)
    print(f"checkpoint {report['checkpoint']} (iteration {report['iteration']}), {report['env']}, "
          f"seed {report['seed']}, {report['num_episodes']} greedy episodes")
    print(f"return  mean {report['episode_return_mean']:.2f}  std {report['episode_return_std']:.2f}  "
          f"min {report['episode_return_min']:.2f}  max {report['episode_return_max']:.2f}")
    print(f"length  mean {report['episode_len_mean']:.1f}  min {report['episode_len_min']}  "
          f"max {report['episode_len_max']}")
    if report["video"]:
        print(f"video   {report['video']}")
    print(f"report  {report['report']}")


def _exit_with_error(error: BaseException) -> NoReturn:
    if os.environ.get("RLRUN_DEBUG"):
        raise error
    print(f"rlrun-eval: error: {' '.join(str(error).split())}", file=sys.stderr)
    sys.exit(EXIT_USAGE)

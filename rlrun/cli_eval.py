"""Console entry point `rlrun-eval`: evaluate a checkpoint's policy (greedy unless `explore=true`).

    rlrun-eval checkpoint=<run dir or checkpoint dir> [episodes=10] [seed=<int>] [explore=false]
               [video=true] [video_episodes=1] [video_format=auto|mp4|gif] [record=<dir or dataset id>]

Arguments are Hydra-style `key=value` pairs (`rlrun-eval --help` lists them). Prints the return mean / std / min /
max and the episode lengths, and writes `eval_<time>.json` (and with
`video=true` a file in `videos/`) into the run directory; `record=` also writes
the episodes as a Minari dataset that `offline.dataset` reads. As with `rlrun`, a
mistake ends in one line `rlrun-eval: error: ...` and exit status 2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, NoReturn

from rlrun.config.errors import ConfigError
from rlrun.run.eval_request import VIDEO_FORMATS, EvalRequest

EXIT_USAGE = 2
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
# One line per EvalRequest field for `--help` (a field without one fails test_cli_help).
KEY_HELP = {
    "checkpoint": "run dir (its best/, else latest checkpoint) or checkpoint dir; required",
    "episodes": "greedy episodes to run",
    "seed": "the run's own seed reproduces its evaluation/* numbers",
    "video": "also film greedy episodes into <run dir>/videos/",
    "video_episodes": "episodes to film",
    "video_format": f"{', '.join(VIDEO_FORMATS)} (auto: mp4 if imageio-ffmpeg is installed, else gif)",
    "explore": "play the stochastic policy (as in training) instead of the greedy one",
    "record": "write the episodes as a Minari dataset (a new directory, or a dataset id in the Minari root)",
}
EXAMPLES = """\
examples:
  rlrun-eval checkpoint=outputs/2024-05-01/12-00-00 episodes=20
  rlrun-eval checkpoint=outputs/2024-05-01/12-00-00/checkpoints/final video=true seed=7
  rlrun-eval checkpoint=outputs/2024-05-01/12-00-00 episodes=100 record=data/cartpole-ppo-expert-v0"""


def usage() -> str:
    """The `rlrun-eval --help` page: every key with its default, and examples."""
    lines = ["usage: rlrun-eval checkpoint=<dir> [key=value ...]", "",
             "Evaluates a checkpoint's policy in this process (no Ray, no GPU), prints the return",
             "mean / std / min / max and episode lengths, and writes eval_<time>-<pid>.json into the run",
             "directory.", "", "keys:"]
    for f in dataclasses.fields(EvalRequest):
        default = "<the run's>" if f.name == "seed" else "<dir>" if f.default is dataclasses.MISSING else f.default
        shown = str(default).lower() if isinstance(default, bool) else default
        lines.append(f"  {f'{f.name}={shown}':<26}{KEY_HELP[f.name]}")
    return "\n".join([*lines, "", EXAMPLES])


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
    for key, low in (("episodes", 1), ("video_episodes", 1), ("seed", 0)):
        if values.get(key, low) < low:
            raise ConfigError(f"{key} must be >= {low} (got {values[key]})")
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
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(usage())
        sys.exit(0)
    try:
        request = parse_args(sys.argv[1:])
    except ConfigError as e:
        _exit_with_error(e)
    # An evaluation needs torch and the envs: imported once the arguments are known to be valid.
    from rlrun.core.checkpointing import CheckpointError
    from rlrun.data.offline.dataset import OfflineDataError
    from rlrun.env.env_creation import EnvError, use_headless_gl
    from rlrun.run.evaluation import evaluate_checkpoint

    try:
        report = evaluate_checkpoint(request)
    except (ConfigError, CheckpointError, EnvError, OfflineDataError) as e:
        _exit_with_error(e)
    policy = "stochastic" if report["explore"] else "greedy"
    print(f"checkpoint {report['checkpoint']} (iteration {report['iteration']}), {report['env']}, "
          f"seed {report['seed']}, {report['num_episodes']} {policy} episodes")
    print(f"return  mean {report['episode_return_mean']:.2f}  std {report['episode_return_std']:.2f}  "
          f"min {report['episode_return_min']:.2f}  max {report['episode_return_max']:.2f}")
    print(f"length  mean {report['episode_len_mean']:.1f}  min {report['episode_len_min']}  "
          f"max {report['episode_len_max']}")
    if report["video"]:
        print(f"video   {report['video']}")
        backend = use_headless_gl()  # what env creation chose for this process, if it had to
        if backend is not None and "mujoco" in sys.modules:
            print(f"        rendered off-screen with MUJOCO_GL={backend}: this machine has no display")
    if report["dataset"]:
        print(f"dataset {report['dataset']}")
    print(f"report  {report['report']}")


def _exit_with_error(error: BaseException) -> NoReturn:
    if os.environ.get("RLRUN_DEBUG"):
        raise error
    print(f"rlrun-eval: error: {' '.join(str(error).split())}", file=sys.stderr)
    sys.exit(EXIT_USAGE)

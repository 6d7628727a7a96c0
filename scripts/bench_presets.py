"""Every tuned preset, N seeds each, into one table: docs/benchmarks.md and a learning curve per preset.

For every preset under rlrun/conf/experiment/ (discovered, so a preset added later joins by
itself) and every seed, one run at a time: `rlrun experiment=<preset> seed=<s>
logger.console=none hydra.run.dir=<tmp>/<preset>/<seed>`, a fresh process (bench_common.run_watched:
spawn-to-exit time, peak PSS of its process tree). Presets that train from a recorded dataset
(`offline.dataset` set, relative: data/...) get it from scripts/make_offline_datasets.py, run
once into <tmp>/data before the first of them; every run's working directory is <tmp>.

Per preset the table shows, over seeds (rlrun.report.summary.summarize_run, as `rlrun-report`):
the final training return (the last `run_return`: training episodes, or for offline presets,
which never sample the env, evaluation episodes) and the final evaluation return, mean +- std;
the goal (the run's `stop.return_mean`, else the anchor's) with the env steps and training time
(`time_total_s`) of the first iteration whose `run_return` reaches it, seed by seed; env steps/s
(last `num_env_steps_sampled_lifetime / time_total_s`); spawn-to-exit wall time and peak memory;
and the published result the preset is measured against (its anchor). Each curve (x: env steps,
y: `run_return`, one line per seed, the goal dashed) is written beside the table, under
<out without .md>/<preset>.png, and linked from it.

With `--presets`, only those rows are measured again: the other presets' rows are kept from the
existing table, each with its own `measured` cell (UTC date and commit), so a preset added or
retuned later is benchmarked without re-running every other one.

`--quick` caps every run at QUICK_TIMESTEPS env steps to check this script end to end; its
numbers mean nothing, so it writes to a temporary directory (never to docs/).

Usage: python scripts/bench_presets.py [--presets cartpole_ppo_fast ...] [--seeds 0 1 2] [--out PATH] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bench_common import REPO, RLRUN, machine, run_watched

import rlrun.conf
from rlrun.report.runs import load_run
from rlrun.report.summary import RunSummary, summarize_run
from rlrun.run.plots import run_return

PRESETS_DIR = Path(rlrun.conf.__file__).parent / "experiment"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
MAKE_DATASETS = REPO / "scripts" / "make_offline_datasets.py"
QUICK_TIMESTEPS = 2048
NONE = "-"


@dataclass(frozen=True)
class Anchor:
    """A published result to read a preset's numbers against; `goal` stands in where the preset sets no
    `stop.return_mean` (it is compared with `run_return`, as `stop.return_mean` would be)."""

    text: str
    goal: float | None = None
    goal_on_eval: bool = False  # the issue sets the goal on the final greedy evaluation


# From the issues' preset tables (issues 8, 9, 10, 13) and rl-zoo3's benchmark for CartPole PPO.
# The heading from which docs/benchmarks.md holds other scripts' tables (bench_pixels.py, ...): kept on rewrites.
OTHER_BENCHMARKS = "## Other benchmarks"
ANCHORS = {
    "cartpole_ppo_fast": Anchor("rl-zoo3 PPO 500 @ 100k"),
    "pendulum_ppo": Anchor("rl-zoo3 PPO -172 @ 100k"),
    "acrobot_ppo": Anchor("CleanRL PPO -86 ± 1 @ 500k"),
    "lunarlander_ppo": Anchor("rl-zoo3 PPO 242 @ 1M", goal=200, goal_on_eval=True),
    "lunarlander_continuous_ppo": Anchor("rl-zoo3 PPO 271 ± 32 @ 1M", goal=200,
                                         goal_on_eval=True),
    "cartpole_dqn": Anchor("rl-zoo3 DQN 500 @ 50k; RLlib example 450 @ 200k; CleanRL 489 ± 16 @ 500k", goal=475,
                           goal_on_eval=True),
    "pendulum_sac": Anchor("rl-zoo3 SAC -157 ± 89 @ 20k; RLlib example -250 @ 20k", goal=-200,
                           goal_on_eval=True),
    # Issue 28: TD3's fast learning test, and the MuJoCo presets, on the final greedy evaluation at 1M env steps
    # (rl-zoo3's benchmark: one run each; CleanRL's: the mean over seeds).
    "pendulum_td3": Anchor("rl-zoo3 TD3 -160 @ 20k", goal=-200, goal_on_eval=True),
    "halfcheetah_ppo": Anchor("rl-zoo3 PPO 5819 @ 1M; CleanRL PPO 1443 @ 1M", goal=5800, goal_on_eval=True),
    "hopper_ppo": Anchor("rl-zoo3 PPO 2410 @ 1M; CleanRL PPO 2383 @ 1M", goal=2400, goal_on_eval=True),
    "walker2d_ppo": Anchor("rl-zoo3 PPO 3479 @ 1M; CleanRL PPO 2288 @ 1M", goal=3400, goal_on_eval=True),
    "cartpole_impala": Anchor("RLlib IMPALA CartPole example: 450 within 2M env steps"),
    "cartpole_appo": Anchor("RLlib APPO CartPole example: 450 within 2M env steps"),
    "cartpole_bc": Anchor("RLlib BC CartPole example: eval 350", goal=475),
    "cartpole_marwil": Anchor("RLlib MARWIL CartPole example: eval 250", goal=400),
    # Issue 11: 2 agents' summed return (the preset's stop.return_mean 900 is the goal).
    "multi_cartpole_ppo": Anchor("RLlib multi-agent CartPole PPO example: 450 x agents within 400k"),
    # Issue 11: halfway from a random policy (-81.0) to the fixed-assignment heuristic (-46.6),
    # both from scripts/simple_spread_baselines.py.
    "simple_spread_mappo": Anchor("MAPPO (Yu et al. 2022), BenchMARL MAPPO; random -81.0, heuristic -46.6",
                                  goal=-63.8, goal_on_eval=True),
    # Issue 25: pixels. The Atari presets' goals are their stop.return_mean (the game's score, training).
    "minigrid_doorkey_ppo": Anchor("rl-starter-files PPO (MiniGrid's own baseline) solves DoorKey-5x5 in ~100k "
                                   "frames"),
    "pong_ppo": Anchor("CleanRL ppo_atari.py 20.36 ± 0.20 @ 10M; rl-zoo3 PPO 20.99 @ 10M"),
    "breakout_ppo": Anchor("CleanRL ppo_atari.py 414.7 ± 28.1 @ 10M; rl-zoo3 PPO 398 @ 10M"),
    "pong_dqn": Anchor("rl-zoo3 DQN 20.6 @ 10M"),
    "pong_appo": Anchor("RLlib tuned APPO Pong example: 20 @ 10M"),
    # Issue 26: self-play returns are 0 by construction; the goal is on WinRate's games against a random player
    # (docs/benchmarks.md's Other benchmarks).
    "tictactoe_ppo": Anchor("win or draw >= 95% of 200 games against a random player (evaluation/win_rate)"),
    # Issue 27: memory (CartPole without its velocities), training return 475 within 150k env steps.
    "stateless_cartpole_ppo_lstm": Anchor("rl-zoo3 RecurrentPPO CartPoleNoVel-v1 500 @ 100k; RLlib stateless "
                                          "CartPole LSTM 350 within 2M"),
}


@dataclass(frozen=True)
class SeedResult:
    """One finished run: its numbers, and what the user waited for and the memory it took."""

    seed: int
    summary: RunSummary
    exit_s: float
    peak_mb: float


@dataclass(frozen=True)
class PresetResult:
    name: str
    goal: float | None
    seeds: list[SeedResult]


def discover_presets() -> list[str]:
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def needs_datasets(preset: str) -> bool:
    """Whether the preset trains from a recorded dataset (its `offline.dataset` is set)."""
    config = yaml.safe_load((PRESETS_DIR / f"{preset}.yaml").read_text()) or {}
    return (config.get("offline") or {}).get("dataset") is not None


def goal_of(preset: str, config: dict | None) -> float | None:
    """The run's own `stop.return_mean` (from its composed config), else the anchor's goal."""
    goal = ((config or {}).get("stop") or {}).get("return_mean")
    if goal is not None:
        return float(goal)
    anchor = ANCHORS.get(preset)
    return None if anchor is None else anchor.goal


def run_seed(preset: str, seed: int, workdir: Path, quick: bool) -> tuple[SeedResult, float | None]:
    """One `rlrun experiment=<preset> seed=<seed>` run in `workdir`; its result and its goal."""
    run_dir = workdir / preset / str(seed)
    overrides = [f"experiment={preset}", f"seed={seed}", "logger.console=none", f"hydra.run.dir={run_dir}"]
    if quick:
        overrides.append(f"stop.timesteps={QUICK_TIMESTEPS}")
    watched = run_watched([RLRUN, *overrides], cwd=workdir)
    run = load_run(run_dir)
    goal = goal_of(preset, run.config)
    return SeedResult(seed, summarize_run(run, goal), watched.exit_s, watched.peak_mb), goal


def run_preset(preset: str, seeds: Sequence[int], workdir: Path, quick: bool) -> PresetResult:
    results, goal = [], None
    for seed in seeds:
        result, goal = run_seed(preset, seed, workdir, quick)
        s = result.summary
        print(f"{preset} seed {seed}: return {fmt(s.final_return)}, eval {fmt(s.final_eval_return)}, "
              f"env steps to goal {fmt(goal, '{:g}')}: {steps_to_goal(s)}, {result.exit_s:.0f} s spawn to exit",
              flush=True)
        results.append(result)
    return PresetResult(preset, goal, results)


def fmt(value: float | None, spec: str = "{:.1f}") -> str:
    return NONE if value is None else spec.format(value)


def mean_std(values: Sequence[float | None], spec: str = "{:.1f}", unit: str = "") -> str:
    """`mean ± std` over the seeds that have the number (just the value for one seed), then `unit`."""
    present = [v for v in values if v is not None]
    if not present:
        return NONE
    if len(present) == 1:
        return spec.format(present[0]) + unit
    return f"{spec.format(statistics.fmean(present))} ± {spec.format(statistics.stdev(present))}{unit}"


def steps_to_goal(s: RunSummary) -> str:
    return "not reached" if s.steps_to_threshold is None else f"{s.steps_to_threshold / 1000:.1f}k"


def time_to_goal(s: RunSummary) -> str:
    return "not reached" if s.time_to_threshold_s is None else f"{s.time_to_threshold_s:.1f} s"


def plot_curves(result: PresetResult, path: Path) -> None:
    """`run_return` against env steps, one line per seed, the goal dashed.

    A Figure without pyplot, as rlrun.run.plots draws a run's own curve: no global figure registry.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for seed in result.seeds:
        points = [(r["num_env_steps_sampled_lifetime"], ret) for r in seed.summary.run.rows
                  if (ret := run_return(r)) is not None]
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) == 1 else None, label=f"seed {seed.seed}")
    if result.goal is not None:
        ax.axhline(result.goal, color="black", linestyle="--", linewidth=1, label=f"goal {result.goal:g}")
    if ax.lines:
        ax.legend(fontsize="small")
    ax.set_xlabel("env steps (offline: dataset rows read)")
    ax.set_ylabel("episode return (training; offline: evaluation)")
    ax.set_title(result.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)




def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else commit


HEADER = ["preset", "final training return", "final eval return", "goal", "env steps to goal",
          "training time to goal", "env steps/s", "wall time (spawn to exit)", "peak memory", "anchor", "curve",
          "measured"]


def kept_tail(path: Path) -> list[str]:
    """The page's sections from OTHER_BENCHMARKS on (other scripts' tables, pasted by hand), kept as they are."""
    lines = path.read_text().splitlines() if path.exists() else []
    return lines[lines.index(OTHER_BENCHMARKS):] if OTHER_BENCHMARKS in lines else []


def kept_rows(path: Path) -> dict[str, list[str]]:
    """The rows of an existing table, by preset name (cells without the outer pipes); the tables under Other
    benchmarks (other scripts', e.g. tictactoe_ppo's games by seed) are not preset rows."""
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    lines = lines[:lines.index(OTHER_BENCHMARKS)] if OTHER_BENCHMARKS in lines else lines
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines if line.startswith("| `")]
    return {cells[0].strip("`"): cells for cells in rows}


def render(results: Sequence[PresetResult], images: dict[str, str], kept: dict[str, list[str]],
           measured: str, seeds: Sequence[int], command: str, quick: bool, tail: Sequence[str] = ()) -> str:
    """The whole benchmarks.md: how it was measured, the table (new rows, `measured` when and at which commit,
    and `kept` ones), what each column means."""
    rows = dict(kept)
    for r in results:
        summaries = [s.summary for s in r.seeds]
        anchor = ANCHORS.get(r.name)
        rows[r.name] = [
            f"`{r.name}`",
            mean_std([s.final_return for s in summaries]),
            mean_std([s.final_eval_return for s in summaries]),
            fmt(r.goal, "{:g}"),
            ", ".join(steps_to_goal(s) for s in summaries),
            ", ".join(time_to_goal(s) for s in summaries),
            mean_std([s.steps_per_s for s in summaries], "{:,.0f}"),
            mean_std([s.exit_s for s in r.seeds], "{:.0f}", " s"),
            mean_std([s.peak_mb for s in r.seeds], "{:,.0f}", " MiB"),
            NONE if anchor is None else anchor.text,
            f"[png]({images[r.name]})",
            measured,
        ]
    lines = ["# Preset benchmarks", ""]
    if quick:
        lines += [f"**A `--quick` smoke test: every run was cut to {QUICK_TIMESTEPS} env steps. "
                  "These numbers mean nothing.**", ""]
    lines += [
        f"Every preset under `rlrun/conf/experiment/`, seeds {', '.join(map(str, seeds))}, one run at a time, "
        "each a fresh `rlrun experiment=<preset> seed=<seed> logger.console=none` process "
        "(`scripts/bench_presets.py`, `make bench-presets`).",
        "",
        f"- machine: {machine()}",
        f"- last command: `{command}` (each row says when and at which commit it was measured)",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
        *("| " + " | ".join(rows[name]) + " |" for name in sorted(rows)),
        "",
        "- **final training return**: each run's last `env_runners/episode_return_mean` (mean over its last "
        "episodes); for the offline presets (BC, MARWIL), which never sample the env, the last "
        "`evaluation/episode_return_mean`. Mean ± std over seeds.",
        "- **final eval return**: each run's last `evaluation/episode_return_mean` (greedy episodes at the end "
        "of the run, and every `evaluation.every_iterations` where the preset sets it). Mean ± std over seeds.",
        "- **goal**: the preset's `stop.return_mean`, else the goal of its issue (the anchor's row). "
        "**env steps to goal** / **training time to goal**, seed by seed: `num_env_steps_sampled_lifetime` "
        "(offline: dataset rows read) and `time_total_s` (the training iterations' time, without start-up) "
        "of the first iteration whose final-training-return metric reaches it. Where an issue sets the goal "
        "on the evaluation return ("
        f"{', '.join(f'`{name}`' for name, anchor in sorted(ANCHORS.items()) if anchor.goal_on_eval)}), "
        "compare the final eval return with it.",
        "- **env steps/s**: the last `num_env_steps_sampled_lifetime / time_total_s`. **wall time**: from "
        "process spawn to exit (Ray start-up and the final evaluation and checkpoint included). "
        "**peak memory**: peak PSS of the run's whole process tree.",
        "- **anchor**: a published result for the same env and algorithm; `-` where there is none.",
        "",
        *preset_sections(rows),
        *tail,
    ]
    return "\n".join(lines)


def preset_sections(rows: dict[str, list[str]]) -> list[str]:
    """One section per preset: its learning curve, the command that trains it, and when and at which commit
    its row was measured (on the machine the page names), so a reader can reproduce any row."""
    lines = ["## Learning curves", ""]
    for name in sorted(rows):
        cells = rows[name]
        image = re.search(r"\]\((.+?)\)", cells[10])
        lines += [f"### {name}", "", f"Measured {cells[11]}; anchor: {cells[9]}.", "",
                  "```bash", f"rlrun experiment={name} seed=0", "```", ""]
        if image:
            lines += [f"![{name}: return over env steps, one line per seed]({image.group(1)})", ""]
    return lines


def parse_args() -> argparse.Namespace:
    presets = discover_presets()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", metavar="PRESET", help=f"a subset of {', '.join(presets)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds per preset (default 0 1 2)")
    parser.add_argument("--out", type=Path, help=f"the markdown file to write (default {DEFAULT_OUT.relative_to(REPO)};"
                        " with --quick, one in a new temporary directory)")
    parser.add_argument("--quick", action="store_true",
                        help=f"cap every run at {QUICK_TIMESTEPS} env steps: a smoke test of this script")
    args = parser.parse_args()
    unknown = [p for p in args.presets or [] if p not in presets]
    if unknown:
        parser.error(f"--presets: no preset {', '.join(unknown)} (presets: {', '.join(presets)})")
    args.presets = args.presets or presets
    if args.quick:
        if args.out is not None and (REPO / "docs") in args.out.resolve().parents:
            parser.error(f"--out {args.out}: --quick numbers mean nothing, so they are never written under docs/")
        args.out = args.out or Path(tempfile.mkdtemp(prefix="bench_presets.")) / "benchmarks.md"
    args.out = args.out or DEFAULT_OUT
    return args


def main() -> None:
    args = parse_args()
    command = shlex.join(["python", "scripts/bench_presets.py", *sys.argv[1:]])
    # Before the runs: the code they run (the curves this script writes would otherwise count as changes).
    measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {git_commit()}"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; presets: {' '.join(args.presets)}",
          flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_presets.runs.") as tmp:
        workdir = Path(tmp)
        made_datasets = False
        for preset in args.presets:
            if needs_datasets(preset) and not made_datasets:
                subprocess.run([sys.executable, str(MAKE_DATASETS), "--out", str(workdir / "data")], check=True,
                               stdout=subprocess.DEVNULL)
                made_datasets = True
            results.append(run_preset(preset, args.seeds, workdir, args.quick))
    images_dir = args.out.with_suffix("")
    images_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for result in results:
        plot_curves(result, images_dir / f"{result.name}.png")
        images[result.name] = f"{images_dir.name}/{result.name}.png"
    # Rows of presets not measured this time stay as they were (only when a subset was asked for).
    presets = discover_presets()
    kept = {} if args.quick else {name: row for name, row in kept_rows(args.out).items()
                                  if name in presets and name not in args.presets}
    args.out.write_text(render(results, images, kept, measured, args.seeds, command, args.quick,
                               [] if args.quick else kept_tail(args.out)))
    print(f"wrote {args.out} and {len(images)} curves under {images_dir}")


if __name__ == "__main__":
    main()

"""Pixels (issue 25): Atari PPO beside CleanRL and SB3 + rl-zoo3, APPO beside PPO, replay memory, inference cost.

One script run on one machine, every program in a fresh process, peers and rlrun interleaved so
that the machine's load falls on both alike:

1. PPO on Pong, end to end (sampling and updates) for the first `--steps` agent steps (default
   50,000, rounded down to whole 8 x 128 rollouts), CleanRL's hyperparameters everywhere:
   - `rlrun experiment=pong_ppo` (gymnasium backend) vs CleanRL's `ppo_atari.py` (target >= 1.0x)
     and vs SB3's PPO with rl-zoo3's Atari hyperparameters (scripts/sb3_atari_ppo.py, target >= 1.3x);
   - `rlrun experiment=pong_ppo env.backend=envpool` vs CleanRL's `ppo_atari_envpool.py` (>= 1.0x).
   The rate compared is each program's own training-loop clock (CleanRL's last `SPS:` line, the
   seconds SB3's `learn()` took, rlrun's `time_total_s`), which leaves out imports, env and model
   building and rlrun's final evaluation episode; spawn to exit and the CPU seconds of each process
   tree are reported beside it (steps per CPU second suffer least from other processes' load).
   CleanRL's scripts are called where they lie, in ../shared/anchors/cleanrl (never copied into the
   project); without that folder their rows are skipped and the table says so. The peers run in the
   peer venv, .venv-bench (scripts/bench_common.py), created on first use.
2. APPO vs PPO with the same resources (`env_runners.num=2 env_runners.num_envs_per_runner=8
   learners.num=1`, a local Ray cluster): each preset (pong_appo, pong_ppo) as it is otherwise, for
   `--async-steps` agent steps; env steps sampled per second of the training loop (target: APPO
   >= 1.3x PPO).
3. Replay memory: scripts/bench_replay_memory.py's workers, a buffer of `--replay-transitions`
   (4, 84, 84) uint8 transitions (default 1M): bytes per transition (target <= 8 KB) and the
   process's peak resident memory (target <= 8 GB at 1M), beside SB3's ReplayBuffer
   (optimize_memory_usage) capped at `--replay-peer-transitions` (its bytes per transition do not
   depend on the size).
4. Inference overhead: one rlrun EnvRunner with pong_ppo's 8 envs (NatureCNN forward and action
   sampling included, torch threads as an env runner actor sets them) against the same 8
   preprocessed envs built alone and stepped with random actions, in alternating rounds.

Prints a markdown table (machine, load averages at the start and the end, every number, the ratios
and the targets) and writes it to `--out` (default /tmp/bench_pixels.md).

Usage: python scripts/bench_pixels.py [--steps 50000] [--async-steps 20000] [--replay-transitions 1000000]
       [--repeats 1] [--first-repeat 0] [--skip ppo async replay inference] [--quick]
       [--out /tmp/bench_pixels.md] [--json PATH]
`--quick` runs everything small (~5k steps, 50k transitions): it checks that everything runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import ANCHORS, BENCH_PY, REPO, ensure_bench_venv, machine, run_rlrun, run_watched

ROLLOUT = 8 * 128  # CleanRL's and rl-zoo3's 8 envs x 128 steps: every program trains whole rollouts
CLEANRL = ANCHORS / "cleanrl"
SB3_SCRIPT = Path(__file__).with_name("sb3_atari_ppo.py")
ASYNC_RESOURCES = ["env_runners.num=2", "env_runners.num_envs_per_runner=8", "learners.num=1"]
QUIET = ["evaluation.episodes=1", "logger.tensorboard=false"]
TARGETS = {"cleanrl": 1.0, "sb3": 1.3, "cleanrl_envpool": 1.0, "appo": 1.3}
REPLAY_BYTES_TARGET = 8 * 1024
REPLAY_RSS_TARGET_MB = 8 * 1024
SPS_LINE = re.compile(r"^SPS: (\d+)", re.MULTILINE)




def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def against_target(mine: list[dict], runs: list[dict], rate: Any, target: float) -> str:
    """rlrun's median `rate` over a peer's, with the issue's target; `-` on rlrun's own rows (no `mine`)."""
    if not mine:
        return "-"
    ratio = med(mine, rate) / med(runs, rate)
    return f"**{ratio:.2f}x** (>= {target:.1f}x: {verdict(ratio >= target)})"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- 1. PPO end to end ------------------------------------------------------------------------------------------


def ppo_rlrun(backend: str, steps: int, seed: int, workdir: Path) -> dict[str, Any]:
    cpu = children_cpu_s()
    load_before = os.getloadavg()[0]
    # Whole iterations, as the peers run: stop.timesteps would run one more, because rlrun does not count the
    # autoreset rows (gymnasium's NEXT_STEP reset steps, loss_mask 0) as env steps. The rates use its count.
    run, rows = run_rlrun(["experiment=pong_ppo", f"env.backend={backend}", f"seed={seed}", "stop.timesteps=null",
                           f"stop.iterations={steps // ROLLOUT}", *QUIET], workdir / f"rlrun-{backend}-{seed}")
    last = rows[-1]
    sampling = sum(r["timers/env_runner_sampling_timer"] for r in rows)
    update = sum(r["timers/learner_update_timer"] for r in rows)
    return {"steps": last["num_env_steps_sampled_lifetime"], "loop_s": last["time_total_s"], "exit_s": run.exit_s,
            "cpu_s": children_cpu_s() - cpu, "peak_mb": run.peak_mb, "sampling_s": sampling, "update_s": update,
            "load": (load_before + os.getloadavg()[0]) / 2,
            "iteration_rates": [r["env_runners/num_env_steps_sampled"] / r["time_this_iter_s"] for r in rows]}


def ppo_cleanrl(script: str, env_id: str, steps: int, seed: int, workdir: Path) -> dict[str, Any]:
    cwd = workdir / f"{Path(script).stem}-{seed}"  # CleanRL writes runs/ into its working directory
    cwd.mkdir(parents=True, exist_ok=True)
    cpu = children_cpu_s()
    load_before = os.getloadavg()[0]
    run = run_watched(["env", f"PYTHONPATH={CLEANRL}", str(BENCH_PY), str(CLEANRL / script), "--env-id", env_id,
                       "--total-timesteps", str(steps), "--seed", str(seed), "--no-cuda"], cwd=cwd)
    sps = [int(x) for x in SPS_LINE.findall(run.stdout)]
    trained = steps // ROLLOUT * ROLLOUT
    # Its i-th `SPS:` line is i rollouts' steps over the seconds since its loop started: when each iteration ended.
    ends = [0.0, *((i + 1) * ROLLOUT / rate for i, rate in enumerate(sps))]
    return {"steps": trained, "loop_s": trained / sps[-1], "exit_s": run.exit_s, "cpu_s": children_cpu_s() - cpu,
            "peak_mb": run.peak_mb, "load": (load_before + os.getloadavg()[0]) / 2,
            "iteration_rates": [ROLLOUT / (b - a) for a, b in zip(ends, ends[1:])]}


def ppo_sb3(steps: int, seed: int, workdir: Path) -> dict[str, Any]:
    cpu = children_cpu_s()
    load_before = os.getloadavg()[0]
    run = run_watched([str(BENCH_PY), str(SB3_SCRIPT), "--timesteps", str(steps), "--seed", str(seed)], cwd=workdir)
    result = run.last_json()
    return {"steps": result["steps"], "loop_s": result["loop_s"], "exit_s": run.exit_s,
            "cpu_s": children_cpu_s() - cpu, "peak_mb": run.peak_mb, "load": (load_before + os.getloadavg()[0]) / 2,
            "iteration_rates": [ROLLOUT / s for s in result["iteration_s"]]}


PPO_PROGRAMS = {
    # name -> (row label, how it runs)
    "rlrun": ("rlrun `experiment=pong_ppo` (gymnasium)", lambda s, seed, w: ppo_rlrun("sync", s, seed, w)),
    "cleanrl": ("CleanRL `ppo_atari.py` (PongNoFrameskip-v4)",
                lambda s, seed, w: ppo_cleanrl("ppo_atari.py", "PongNoFrameskip-v4", s, seed, w)),
    "sb3": ("SB3 PPO, rl-zoo3 Atari hyperparameters", ppo_sb3),
    "cleanrl_envpool": ("CleanRL `ppo_atari_envpool.py` (Pong-v5)",
                        lambda s, seed, w: ppo_cleanrl("ppo_atari_envpool.py", "Pong-v5", s, seed, w)),
    "rlrun_envpool": ("rlrun `experiment=pong_ppo env.backend=envpool`",
                      lambda s, seed, w: ppo_rlrun("envpool", s, seed, w)),
}
# Which rlrun row each peer is compared with.
PEER_OF = {"cleanrl": "rlrun", "sb3": "rlrun", "cleanrl_envpool": "rlrun_envpool"}


def bench_ppo(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    notes = []
    order = list(PPO_PROGRAMS)
    if not CLEANRL.is_dir():
        notes.append(f"CleanRL rows skipped: {CLEANRL} (CleanRL's scripts, kept outside the project) is absent.")
        order = [name for name in order if not name.startswith("cleanrl")]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    for repeat in range(args.first_repeat, args.first_repeat + args.repeats):
        # Alternate the order between repeats, so that a drift of the machine's load favours nobody.
        for name in order if repeat % 2 == 0 else order[::-1]:
            print(f"[ppo] {name} seed {repeat}, {args.steps:,} steps, load {load()} ...", flush=True)
            result = PPO_PROGRAMS[name][1](args.steps, repeat, workdir)
            results[name].append(result)
            print(f"[ppo] {name}: {result['steps'] / result['loop_s']:,.1f} steps/s in the loop, "
                  f"exit {result['exit_s']:.0f} s, cpu {result['cpu_s']:.0f} s", flush=True)
    return results, notes


def med(runs: list[dict[str, Any]], fn: Any) -> float:
    return statistics.median(fn(r) for r in runs)


def ppo_table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    def loop_rate(r: dict[str, Any]) -> float:
        return r["steps"] / r["loop_s"]

    def exit_rate(r: dict[str, Any]) -> float:
        return r["steps"] / r["exit_s"]

    def cpu_rate(r: dict[str, Any]) -> float:
        return r["steps"] / r["cpu_s"]

    def iteration_rate(r: dict[str, Any]) -> float:
        return statistics.median(r["iteration_rates"])

    lines = ["| program | agent steps | steps/s (loop) | ratio rlrun / peer (target) | steps/s (median iteration) "
             "| ratio (target) | steps/s (spawn to exit) | ratio | steps per CPU s | ratio | peak MiB | mean load |",
             "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        if not runs:
            continue
        mine = results.get(PEER_OF.get(name, ""), [])
        target = TARGETS.get(name, 0.0)
        cells = [PPO_PROGRAMS[name][0], f"{med(runs, lambda r: r['steps']):,.0f}", f"{med(runs, loop_rate):,.1f}",
                 against_target(mine, runs, loop_rate, target), f"{med(runs, iteration_rate):,.1f}",
                 against_target(mine, runs, iteration_rate, target)]
        cells.append(f"{med(runs, exit_rate):,.1f}")
        cells.append(f"{med(mine, exit_rate) / med(runs, exit_rate):.2f}x" if mine else "-")
        cells.append(f"{med(runs, cpu_rate):,.1f}")
        cells.append(f"{med(mine, cpu_rate) / med(runs, cpu_rate):.2f}x" if mine else "-")
        cells += [f"{med(runs, lambda r: r['peak_mb']):,.0f}", f"{med(runs, lambda r: r['load']):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for name in ("rlrun", "rlrun_envpool"):
        for r in results.get(name, []):
            lines.append(f"\n{PPO_PROGRAMS[name][0]}: its timers: sampling {r['sampling_s']:.0f} s "
                         f"({r['steps'] / r['sampling_s']:,.0f} steps/s while sampling), learner updates "
                         f"{r['update_s']:.0f} s ({r['update_s'] / r['loop_s']:.0%} of the loop's {r['loop_s']:.0f} s)")
    return lines


# -- 2. APPO vs PPO ---------------------------------------------------------------------------------------------


def bench_async(args: argparse.Namespace, workdir: Path) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {"ppo": [], "appo": []}
    for repeat in range(args.first_repeat, args.first_repeat + args.repeats):
        for algo in ("ppo", "appo") if repeat % 2 == 0 else ("appo", "ppo"):
            print(f"[async] {algo} seed {repeat}, {args.async_steps:,} steps, load {load()} ...", flush=True)
            load_before = os.getloadavg()[0]
            run, rows = run_rlrun([f"experiment=pong_{algo}", f"seed={repeat}", *ASYNC_RESOURCES,
                                   f"stop.timesteps={args.async_steps}", *QUIET], workdir / f"async-{algo}-{repeat}")
            last = rows[-1]
            result = {"steps": last["num_env_steps_sampled_lifetime"],
                      "trained": last["num_env_steps_trained_lifetime"], "loop_s": last["time_total_s"],
                      "exit_s": run.exit_s, "peak_mb": run.peak_mb,
                      "load": (load_before + os.getloadavg()[0]) / 2}
            results[algo].append(result)
            print(f"[async] {algo}: {result['steps'] / result['loop_s']:,.1f} sampled steps/s", flush=True)
    return results


def async_table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    def rate(r: dict[str, Any]) -> float:
        return r["steps"] / r["loop_s"]

    lines = [f"| preset (`{' '.join(ASYNC_RESOURCES)}`) | env steps sampled | sampled/s (loop) "
             "| trained/s | ratio APPO / PPO (target) | spawn to exit (s) | peak MiB | mean load |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for algo, runs in results.items():
        cells = [f"`pong_{algo}`", f"{med(runs, lambda r: r['steps']):,.0f}", f"{med(runs, rate):,.1f}",
                 f"{med(runs, lambda r: r['trained'] / r['loop_s']):,.1f}"]
        if algo == "appo" and results["ppo"]:
            ratio = med(runs, rate) / med(results["ppo"], rate)
            cells.append(f"**{ratio:.2f}x** (>= {TARGETS['appo']:.1f}x: {verdict(ratio >= TARGETS['appo'])})")
        else:
            cells.append("-")
        cells += [f"{med(runs, lambda r: r['exit_s']):.0f}", f"{med(runs, lambda r: r['peak_mb']):,.0f}",
                  f"{med(runs, lambda r: r['load']):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# -- 3. Replay memory -------------------------------------------------------------------------------------------


def bench_replay(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    import bench_replay_memory as replay

    defaults = {"buffer": "uniform", "num_envs": 8, "fragment": 4, "episode_steps": 1000, "batch_size": 32,
                "samples": 200}
    ns = argparse.Namespace(**defaults)
    print(f"[replay] rlrun, {args.replay_transitions:,} transitions, load {load()} ...", flush=True)
    results = [replay.spawn(sys.executable, "rlrun", ns, args.replay_transitions)]
    note = ""
    if replay.peer_available():
        peer = min(args.replay_transitions, args.replay_peer_transitions)
        print(f"[replay] SB3, {peer:,} transitions ...", flush=True)
        results.append(replay.spawn(replay.PEER_PY, "sb3", ns, peer))
    else:
        note = f"SB3 replay peer skipped: stable_baselines3 is not importable in {replay.PEER_PY.parent.parent}."
    return results, note


def replay_table(results: list[dict[str, Any]], transitions: int) -> list[str]:
    lines = ["| buffer | transitions | bytes / transition (target) | RSS before (MiB) | peak RSS (MiB) (target) "
             "| fill (s) | sampled transitions/s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(results):
        per = f"{r['bytes_per_transition']:,.0f}"
        peak = f"{r['peak_rss_mb']:,.0f}"
        if i == 0:
            per += f" (<= {REPLAY_BYTES_TARGET:,}: {verdict(r['bytes_per_transition'] <= REPLAY_BYTES_TARGET)})"
            if transitions >= 1_000_000:
                peak += f" (<= {REPLAY_RSS_TARGET_MB:,} at 1M: {verdict(r['peak_rss_mb'] <= REPLAY_RSS_TARGET_MB)})"
            else:
                peak += " (the 8 GB target is for 1M)"
        elif results:
            per += f" ({r['bytes_per_transition'] / results[0]['bytes_per_transition']:.1f}x rlrun's)"
        lines.append(f"| {r['buffer']} | {r['transitions']:,} | {per} | {r['rss_before_mb']:,.0f} | {peak} "
                     f"| {r['fill_s']:.1f} | {r['sampled_transitions_per_s']:,.0f} |")
    return lines


# -- 4. Inference overhead --------------------------------------------------------------------------------------


def inference_worker(backend: str, steps: int, rounds: int) -> dict[str, Any]:
    """In a fresh process: alternate rounds of EnvRunner.sample and raw random-action steps of the same envs."""
    import numpy as np
    import torch

    from rlrun.algorithms.from_config import build_algorithm_config
    from rlrun.env import EnvRunner, make_vector_env
    from rlrun.tune.compose import compose_config

    config = build_algorithm_config(compose_config(["experiment=pong_ppo", f"env.backend={backend}"]))
    torch.set_num_threads(config.env_runner_threads())  # as an env runner actor does (one per CPU it is given)
    runner = EnvRunner(config.env_runner_spec())
    num_envs = runner.num_envs
    raw = make_vector_env(config.env_spec(), num_envs, seed=config.seed + 1)
    raw.reset(seed=config.seed + 1)
    rng = np.random.default_rng(0)
    actions = raw.single_action_space.n

    def raw_steps(n: int) -> None:
        for _ in range(n):
            raw.step(rng.integers(0, actions, size=num_envs))

    runner.sample(num_timesteps=num_envs * 16)  # warm-up: envs reset, first forward passes
    raw_steps(16)
    runner_rates, raw_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        batch = runner.sample(num_timesteps=num_envs * steps)
        runner_rates.append(batch["actions"].size / (time.perf_counter() - start))
        start = time.perf_counter()
        raw_steps(steps)
        raw_rates.append(num_envs * steps / (time.perf_counter() - start))
    runner.stop()
    raw.close()
    return {"backend": backend, "num_envs": num_envs, "threads": torch.get_num_threads(),
            "runner": statistics.median(runner_rates), "raw": statistics.median(raw_rates),
            "runner_all": runner_rates, "raw_all": raw_rates}


def bench_inference(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for backend in ("sync", "envpool"):
        print(f"[inference] {backend}, {args.inference_rounds} rounds of {args.inference_steps} steps x 8 envs, "
              f"load {load()} ...", flush=True)
        out = subprocess.run([sys.executable, __file__, "--worker-inference", backend, "--inference-steps",
                              str(args.inference_steps), "--inference-rounds", str(args.inference_rounds)],
                             check=True, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def inference_table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| env backend (8 pong_ppo envs) | raw env steps/s (random actions) | EnvRunner steps/s (NatureCNN, "
             "torch threads) | EnvRunner / raw | per-step cost of the policy (ms per 8-env step) |",
             "|---|---:|---:|---:|---:|"]
    for r in results:
        cost_ms = (r["num_envs"] / r["runner"] - r["num_envs"] / r["raw"]) * 1000
        lines.append(f"| {r['backend']} | {r['raw']:,.0f} | {r['runner']:,.0f} ({r['threads']}) | "
                     f"{r['runner'] / r['raw']:.2f}x | {cost_ms:.1f} |")
    return lines


# -- main -------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000, help="agent steps of each PPO run")
    parser.add_argument("--async-steps", type=int, default=20_000, help="agent steps of each APPO / PPO run")
    parser.add_argument("--replay-transitions", type=int, default=1_000_000)
    parser.add_argument("--replay-peer-transitions", type=int, default=50_000)
    parser.add_argument("--inference-steps", type=int, default=128, help="steps per env per round")
    parser.add_argument("--inference-rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="runs (seeds) of every program; medians reported")
    parser.add_argument("--first-repeat", type=int, default=0,
                        help="index (and seed) of the first repeat; odd ones run the programs in reverse order")
    parser.add_argument("--skip", nargs="*", default=[], choices=["ppo", "async", "replay", "inference"])
    parser.add_argument("--quick", action="store_true", help="small budgets: checks that everything runs")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_pixels.md"))
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--worker-inference", choices=["sync", "envpool"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_inference:
        print(json.dumps(inference_worker(args.worker_inference, args.inference_steps, args.inference_rounds)))
        return
    if args.quick:
        args.steps, args.async_steps = 5 * ROLLOUT, 4_000
        args.replay_transitions, args.replay_peer_transitions = 50_000, 10_000
        args.inference_steps, args.inference_rounds = 32, 2
    args.steps = max(ROLLOUT, args.steps // ROLLOUT * ROLLOUT)
    ensure_bench_venv()
    started, load_start = time.time(), load()
    print(f"{machine()}; load average (1/5/15 min) {load_start}", flush=True)
    out: dict[str, Any] = {}
    notes: list[str] = []

    def save() -> None:  # after every section, so that a long run cut short keeps what it measured
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **out}, indent=2))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "ppo" not in args.skip:
            out["ppo"], ppo_notes = bench_ppo(args, workdir)
            notes += ppo_notes
            save()
        if "async" not in args.skip:
            out["async"] = bench_async(args, workdir)
            save()
    if "replay" not in args.skip:
        out["replay"], note = bench_replay(args)
        notes += [note] if note else []
        save()
    if "inference" not in args.skip:
        out["inference"] = bench_inference(args)
    minutes = (time.time() - started) / 60
    lines = [f"# Pixels benchmark (issue 25){' -- quick mode, numbers mean nothing' if args.quick else ''}", "",
             f"- machine: {machine()}",
             f"- load average (1/5/15 min): {load_start} at the start, {load()} at the end; {minutes:.0f} minutes",
             f"- command: `python scripts/bench_pixels.py {' '.join(sys.argv[1:])}`".rstrip(),
             f"- {args.repeats} run(s) per program (medians), one after the other in alternating order", ""]
    if "ppo" in out:
        lines += [f"## PPO on Pong, first {args.steps:,} agent steps, CleanRL's hyperparameters", "",
                  "steps/s (loop): each program's own training-loop clock (sampling and updates); median "
                  "iteration: 1,024 steps over the median iteration's seconds (one rollout and its update; other "
                  "processes' bursts of load hit single iterations and leave the median); spawn to exit adds "
                  "imports, env building and rlrun's final evaluation episode; CPU s: the process tree's.", "",
                  *ppo_table(out["ppo"]), ""]
    if "async" in out:
        lines += [f"## APPO vs PPO on Pong, same resources, {args.async_steps:,} agent steps", "",
                  "Each preset as it is otherwise: pong_appo sees 64x64 frames through its own 4-layer CNN, "
                  "pong_ppo 84x84 frames through the NatureCNN.", "", *async_table(out["async"]), ""]
    if "replay" in out:
        lines += ["## Replay memory, (4, 84, 84) uint8 Atari transitions (scripts/bench_replay_memory.py)", "",
                  *replay_table(out["replay"], args.replay_transitions), ""]
    if "inference" in out:
        lines += [f"## Inference overhead: one EnvRunner, medians of {args.inference_rounds} alternating rounds of "
                  f"{args.inference_steps} steps", "", *inference_table(out["inference"]), ""]
    lines += [f"- {note}" for note in notes]
    table = "\n".join(lines)
    print("\n" + table)
    args.out.write_text(table + "\n")
    print(f"\nwritten to {args.out}")
    save()


if __name__ == "__main__":
    main()

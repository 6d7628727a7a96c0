"""Chaos benchmark (issue 29): does a run on Ray keep going, and lose nothing, while its actors fail?

APPO and PPO on CartPole-v1 on a local Ray instance (2 env runners; PPO on 2 DDP learners, APPO on 1), each for
`--minutes` (5) of training (`stop.time_s`), twice with the same seed: undisturbed, then under chaos, where a
thread of this script

- SIGKILLs one of the env runners, in turn, every 30 s;
- SIGSTOPs an env runner once, at a third of the run (the run replaces it after `env_runners.sample_timeout_s`,
  set to 10 s here);
- SIGKILLs a learner actor once, at two thirds of the run.

It finds the actors' processes among the rlrun process's descendants by the titles Ray gives them
(`ray::SamplingEnvRunner...`, `ray::LearnerActor...`), so every failure is a real signal to a real process.

Per run it reports, from the run directory: iterations completed; the restarts of each kind
(`fault_tolerance/num_remote_worker_restarts`, `fault_tolerance/num_learner_restarts`) against the failures
caused; rows of `metrics.jsonl` missing or duplicated (goal: none); whether `num_env_steps_sampled_lifetime` grows
by exactly each row's `env_runners/num_env_steps_sampled`; and the final greedy evaluation return, beside the
undisturbed run's.

Usage: python scripts/bench_faults.py [--minutes 5] [--seed 0] [--algos appo ppo]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from bench_common import RLRUN, machine

RUNS = {
    "ppo": ["algo=ppo", "learners.num=2", "algo.train_batch_size=2000", "algo.minibatch_size=250"],
    "appo": ["experiment=cartpole_appo", "learners.num=1"],
}
COMMON = ["env=cartpole", "env_runners.num=2", "env_runners.num_envs_per_runner=4", "ray.num_cpus=4",
          "env_runners.sample_timeout_s=10", "learners.max_restarts=5", "env_runners.max_restarts=100",
          "stop.timesteps=null", "stop.return_mean=null", "evaluation.episodes=20", "logger.console=none"]
KILL_RUNNER_EVERY_S = 30.0
RUNNER_TITLE, LEARNER_TITLE = "ray::SamplingEnvRunner", "ray::LearnerActor"


@dataclass
class Chaos:
    """The failures caused during one run, by kind."""

    runners_killed: int = 0
    runners_frozen: int = 0
    learners_killed: int = 0
    log: list[str] = field(default_factory=list)


def actor_processes(root: psutil.Process, title: str) -> list[psutil.Process]:
    """The live, unfrozen descendants of `root` whose Ray process title starts with `title`."""
    found = []
    for proc in root.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if " ".join(proc.cmdline()).startswith(title) and proc.status() != psutil.STATUS_STOPPED:
                found.append(proc)
    return found


def signal_one(root: psutil.Process, title: str, sig: signal.Signals, rng: random.Random) -> bool:
    """Send `sig` to one of the actors titled `title` (chosen by `rng`); False if none is up right now."""
    procs = actor_processes(root, title)
    if not procs:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(rng.choice(procs).pid, sig)
        return True
    return False


def cause_chaos(proc: subprocess.Popen, duration_s: float, chaos: Chaos, seed: int) -> None:
    """Until the run ends: a runner killed every KILL_RUNNER_EVERY_S, one frozen at 1/3 and a learner killed at 2/3 of
    the training time (counted from the first env runner's appearance, once Ray and the actors are up)."""
    root, rng = psutil.Process(proc.pid), random.Random(seed)
    while proc.poll() is None and not actor_processes(root, RUNNER_TITLE):
        time.sleep(0.5)
    start = time.monotonic()
    events = [(duration_s / 3, "freeze"), (2 * duration_s / 3, "learner")]
    events += [(t, "runner") for t in range(int(KILL_RUNNER_EVERY_S), int(duration_s), int(KILL_RUNNER_EVERY_S))]
    for at, kind in sorted(events):
        while proc.poll() is None and time.monotonic() - start < at:
            time.sleep(0.2)
        if proc.poll() is not None:
            return
        title, sig = (LEARNER_TITLE, signal.SIGKILL) if kind == "learner" else (
            RUNNER_TITLE, signal.SIGSTOP if kind == "freeze" else signal.SIGKILL)
        if signal_one(root, title, sig, rng):
            chaos.runners_killed += kind == "runner"
            chaos.runners_frozen += kind == "freeze"
            chaos.learners_killed += kind == "learner"
            chaos.log.append(f"{time.monotonic() - start:.0f}s {kind}")


def run(algo: str, seed: int, minutes: float, run_dir: Path, chaotic: bool) -> tuple[list[dict], Chaos, int]:
    """One rlrun run, with or without chaos; its metrics rows, the failures caused and its exit status."""
    cmd = [RLRUN, *RUNS[algo], *COMMON, f"seed={seed}", f"stop.time_s={minutes * 60:g}", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    chaos = Chaos()
    thread = threading.Thread(target=cause_chaos, args=(proc, minutes * 60, chaos, seed), daemon=True)
    if chaotic:
        thread.start()
    _, stderr = proc.communicate()
    if chaotic:
        thread.join()
    if proc.returncode:
        print(f"{algo} ({'chaos' if chaotic else 'undisturbed'}) exited with {proc.returncode}: "
              f"{stderr.strip().splitlines()[-1:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows, chaos, proc.returncode


def summary(rows: list[dict]) -> dict[str, object]:
    iterations = [row["training_iteration"] for row in rows]
    expected = list(range(1, len(rows) + 1))
    steps, lifetime, consistent = 0, [row["num_env_steps_sampled_lifetime"] for row in rows], True
    for row, total in zip(rows, lifetime, strict=True):
        steps += row["env_runners/num_env_steps_sampled"]
        consistent &= steps == total
    last = rows[-1]
    evaluations = [row["evaluation/episode_return_mean"] for row in rows if "evaluation/episode_return_mean" in row]
    return {
        "iterations": len(rows),
        "missing": len(set(expected) - set(iterations)),
        "duplicated": len(iterations) - len(set(iterations)),
        "steps consistent": "yes" if consistent else "NO",
        "runner restarts": last.get("fault_tolerance/num_remote_worker_restarts", 0),
        "learner restarts": last.get("fault_tolerance/num_learner_restarts", 0),
        "final return": evaluations[-1] if evaluations else float("nan"),
        "env steps": last["num_env_steps_sampled_lifetime"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algos", nargs="+", choices=sorted(RUNS), default=["appo", "ppo"])
    args = parser.parse_args()
    print(f"{machine()}\n")
    lines = ["| algorithm | run | iterations | rows missing / duplicated | env steps consistent | failures caused "
             "(runners killed, frozen, learners killed) | runner restarts | learner restarts | env steps | "
             "final return (20 greedy episodes) | exit |",
             "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        for algo in args.algos:
            for chaotic in (False, True):
                name = "chaos" if chaotic else "undisturbed"
                rows, chaos, code = run(algo, args.seed, args.minutes, Path(tmp) / f"{algo}_{name}", chaotic)
                s = summary(rows)
                caused = f"{chaos.runners_killed}, {chaos.runners_frozen}, {chaos.learners_killed}" if chaotic else "-"
                lines.append(f"| {algo} | {name} | {s['iterations']} | {s['missing']} / {s['duplicated']} | "
                             f"{s['steps consistent']} | {caused} | {s['runner restarts']} | {s['learner restarts']} "
                             f"| {s['env steps']} | {s['final return']:.1f} | {code} |")
                if chaotic:
                    print(f"{algo} chaos: {', '.join(chaos.log)}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Replay memory for Atari: bytes per transition, peak resident memory and sampling speed of a full buffer.

Fills a replay buffer with `--transitions` transitions of (4, 84, 84) uint8 frame stacks in the fragments an
env runner hands over (`--num-envs` sub-envs, `--fragment` steps each; each stack is the previous one shifted
by a new frame, and an episode of `--episode-steps` steps starts with "reset" padding, as gymnasium's
FrameStackObservation), then draws `--samples` batches of `--batch-size` 3-step transitions, as DQN does.
Each buffer runs in a fresh process, which reports:

- bytes per transition: the buffer's `bytes_per_env_step` metric (rlrun), or its arrays' bytes over its
  capacity (SB3);
- peak resident memory of the whole process (VmHWM), and its resident memory before the buffer existed
  (Python, numpy, torch), so the buffer's share is the difference;
- fill time and sampled transitions per second (the frames are drawn from a pool of 256 random frames, so
  generating them costs next to nothing).

The peer is Stable-Baselines3's `ReplayBuffer` with `optimize_memory_usage=True` (next observations are the
following slot, stacks stored whole), run in the benchmarks' peer venv (.venv-bench, scripts/bench_common.py)
when SB3 is importable there; it is skipped otherwise, and said so. SB3 needs ~28 KB per transition, so its
run is capped at `--peer-transitions` (its bytes per transition do not depend on the size).

Usage: python scripts/bench_replay_memory.py [--transitions 1000000] [--buffer uniform|prioritized]
       [--peer-transitions 200000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

STACK, SIDE, ACTIONS = 4, 84, 6
POOL = 256  # distinct random frames the stream cycles through
REPO = Path(__file__).resolve().parents[1]
PEER_PY = REPO / ".venv-bench" / "bin" / "python"


def resident_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB, from /proc/self/status (VmRSS, VmHWM)."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    if "VmHWM" not in fields:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak
    return fields["VmRSS"], fields["VmHWM"]


class FrameStream:
    """`num_envs` sub-envs' frame stacks and episode ends, as an env runner's fragments carry them."""

    def __init__(self, num_envs: int, episode_steps: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.pool = rng.integers(0, 256, size=(POOL, SIDE, SIDE), dtype=np.uint8)
        self.rng = rng
        self.num_envs = num_envs
        self.episode_steps = episode_steps
        self.counter = np.arange(num_envs) * 37  # which pool frame each sub-env shows next
        self.stacks = np.stack([self._reset_stack(env) for env in range(num_envs)])
        self.age = rng.integers(0, episode_steps, size=num_envs)  # the episodes end at different steps
        self.prev_done = np.zeros(num_envs, dtype=bool)

    def _next_frame(self, env: int) -> np.ndarray:
        self.counter[env] += 1
        return self.pool[self.counter[env] % POOL]

    def _reset_stack(self, env: int) -> np.ndarray:
        return np.repeat(self._next_frame(env)[None], STACK, axis=0)

    def fragment(self, steps: int) -> dict[str, np.ndarray]:
        """A time-major fragment `[steps, num_envs, ...]` with rlrun's column names (NEXT_STEP autoreset)."""
        envs = self.num_envs
        obs = np.empty((steps, envs, STACK, SIDE, SIDE), dtype=np.uint8)
        term = np.zeros((steps, envs), dtype=bool)
        mask = np.empty((steps, envs), dtype=bool)
        for t in range(steps):
            obs[t] = self.stacks
            mask[t] = ~self.prev_done
            for env in range(envs):
                if self.prev_done[env]:  # the autoreset step: the next episode's first stack
                    self.stacks[env] = self._reset_stack(env)
                    self.age[env] = 0
                else:
                    self.stacks[env, :-1] = self.stacks[env, 1:]
                    self.stacks[env, -1] = self._next_frame(env)
                    self.age[env] += 1
            term[t] = mask[t] & (self.age >= self.episode_steps)
            self.prev_done = term[t].copy()
        return {
            "obs": obs,
            "actions": self.rng.integers(0, ACTIONS, size=(steps, envs)),
            "rewards": self.rng.normal(size=(steps, envs)).astype(np.float32),
            "terminateds": term,
            "truncateds": np.zeros((steps, envs), dtype=bool),
            "loss_mask": mask,
        }


def run_rlrun(args: argparse.Namespace) -> dict[str, Any]:
    """Fill rlrun's buffer (frame storage), then sample; one process per call."""
    from rlrun.data.replay_buffers import REPLAY_BUFFERS

    before, _ = resident_mb()
    stream = FrameStream(args.num_envs, args.episode_steps)
    buffer = REPLAY_BUFFERS[args.buffer](args.transitions, seed=0, num_envs=args.num_envs, frame_stack=STACK)
    start = time.perf_counter()
    for _ in range(-(-args.transitions // (args.num_envs * args.fragment))):
        buffer.add(stream.fragment(args.fragment))
    fill_s = time.perf_counter() - start
    metrics = buffer.get_metrics()
    batch = buffer.sample(args.batch_size, n_step=3, gamma=0.99)  # warm up
    assert batch["obs"].shape == (args.batch_size, STACK, SIDE, SIDE) and batch["obs"].dtype == np.uint8
    start = time.perf_counter()
    for _ in range(args.samples):
        buffer.sample(args.batch_size, n_step=3, gamma=0.99, beta=0.4)
    sample_s = time.perf_counter() - start
    _, peak = resident_mb()
    return {
        "buffer": f"rlrun {args.buffer}, frame_stack={STACK}",
        "transitions": metrics["num_env_steps_stored"],
        "bytes_per_transition": metrics["bytes_per_env_step"],
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "fill_s": fill_s,
        "sampled_transitions_per_s": args.samples * args.batch_size / sample_s,
    }


def run_sb3(args: argparse.Namespace) -> dict[str, Any]:
    """Fill SB3's ReplayBuffer (optimize_memory_usage) the same way, then sample (runs in the peer venv)."""
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer

    before, _ = resident_mb()
    stream = FrameStream(args.num_envs, args.episode_steps)
    buffer = ReplayBuffer(args.transitions, gym.spaces.Box(0, 255, (STACK, SIDE, SIDE), np.uint8),
                          gym.spaces.Discrete(ACTIONS), device="cpu", n_envs=args.num_envs,
                          optimize_memory_usage=True, handle_timeout_termination=False)
    infos = [{} for _ in range(args.num_envs)]
    start = time.perf_counter()
    for _ in range(-(-args.transitions // (args.num_envs * args.fragment))):
        fragment = stream.fragment(args.fragment + 1)  # SB3 is handed (obs, next obs) pairs
        for t in range(args.fragment):
            buffer.add(fragment["obs"][t], fragment["obs"][t + 1], fragment["actions"][t], fragment["rewards"][t],
                       fragment["terminateds"][t], infos)
    fill_s = time.perf_counter() - start
    arrays = [buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
    buffer.sample(args.batch_size)
    start = time.perf_counter()
    for _ in range(args.samples):
        buffer.sample(args.batch_size)
    sample_s = time.perf_counter() - start
    _, peak = resident_mb()
    return {
        "buffer": "SB3 ReplayBuffer, optimize_memory_usage",
        "transitions": buffer.buffer_size * args.num_envs if buffer.full else buffer.pos * args.num_envs,
        "bytes_per_transition": sum(a.nbytes for a in arrays) / (buffer.buffer_size * args.num_envs),
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "fill_s": fill_s,
        "sampled_transitions_per_s": args.samples * args.batch_size / sample_s,
    }


def spawn(python: Path | str, worker: str, args: argparse.Namespace, transitions: int) -> dict[str, Any]:
    """One worker in a fresh process (its peak memory is its own); its last stdout line is its JSON result."""
    cmd = [str(python), __file__, "--worker", worker, "--transitions", str(transitions), "--buffer", args.buffer,
           "--num-envs", str(args.num_envs), "--fragment", str(args.fragment), "--episode-steps",
           str(args.episode_steps), "--batch-size", str(args.batch_size), "--samples", str(args.samples)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def peer_available() -> bool:
    if not PEER_PY.exists():
        return False
    return subprocess.run([str(PEER_PY), "-c", "import stable_baselines3"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--buffer", choices=["uniform", "prioritized"], default="uniform")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--fragment", type=int, default=4, help="env steps per sub-env per add")
    parser.add_argument("--episode-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--peer-transitions", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", choices=["rlrun", "sb3"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps((run_rlrun if args.worker == "rlrun" else run_sb3)(args)))
        return

    results = [spawn(sys.executable, "rlrun", args, args.transitions)]
    if peer_available():
        results.append(spawn(PEER_PY, "sb3", args, min(args.transitions, args.peer_transitions)))
        note = ""
    else:
        note = f"SB3 peer skipped: stable_baselines3 is not importable in {PEER_PY.parent.parent}."
    print(f"(4, 84, 84) uint8 stacks, {args.num_envs} sub-envs, fragments of {args.fragment} steps, "
          f"batches of {args.batch_size} 3-step transitions\n")
    print("| buffer | transitions | bytes / transition | RSS before (MiB) | peak RSS (MiB) | fill (s) "
          "| sampled transitions/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['buffer']} | {r['transitions']:,} | {r['bytes_per_transition']:,.0f} | "
              f"{r['rss_before_mb']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['fill_s']:.1f} | "
              f"{r['sampled_transitions_per_s']:,.0f} |")
    if note:
        print(f"\n{note}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results,
                                         "note": note}, indent=2))


if __name__ == "__main__":
    main()

"""Reference returns for `experiment=simple_spread_mappo`: a random policy and a fixed-assignment heuristic.

MPE's simple_spread (mpe2, N agents, N landmarks): every agent is rewarded for the
landmarks being covered and penalised for collisions. The heuristic sends agent i
straight to landmark i (it reads the landmark's relative position from its own
observation and moves along the larger axis), so it covers every landmark without
learning who goes where. The preset's goal is a final eval return at least halfway
from the random policy's to the heuristic's (issue 11); the returns are summed over
agents per episode, as rlrun reports them.

Usage: python scripts/simple_spread_baselines.py [--episodes 200] [--n 3] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from mpe2 import simple_spread_v3

# simple_spread's discrete actions: no-op, left, right, down, up.
LEFT, RIGHT, DOWN, UP = 1, 2, 3, 4


def heuristic_action(obs: np.ndarray, agent_index: int) -> int:
    """Move toward landmark `agent_index` (obs: own velocity, own position, then landmark offsets)."""
    dx, dy = obs[4 + 2 * agent_index: 6 + 2 * agent_index]
    if abs(dx) >= abs(dy):
        return RIGHT if dx > 0 else LEFT
    return UP if dy > 0 else DOWN


def mean_return(policy: str, episodes: int, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of the per-episode return summed over agents."""
    env = simple_spread_v3.parallel_env(N=n, max_cycles=25)
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total = 0.0
        while env.agents:
            if policy == "random":
                actions = {a: int(rng.integers(5)) for a in env.agents}
            else:
                actions = {a: heuristic_action(obs[a], env.possible_agents.index(a)) for a in env.agents}
            obs, rewards, _, _, _ = env.step(actions)
            total += sum(rewards.values())
        returns.append(total)
    env.close()
    return float(np.mean(returns)), float(np.std(returns) / np.sqrt(len(returns)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {policy: mean_return(policy, args.episodes, args.n, args.seed) for policy in ("random", "heuristic")}
    for policy, (mean, se) in results.items():
        print(f"{policy:>9}: {mean:8.2f} ± {se:.2f} (episode return summed over {args.n} agents, "
              f"{args.episodes} episodes)")
    halfway = (results["random"][0] + results["heuristic"][0]) / 2
    print(f"  halfway: {halfway:8.2f}")


if __name__ == "__main__":
    main()

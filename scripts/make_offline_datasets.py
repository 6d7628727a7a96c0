"""Make the CartPole datasets the offline presets train from, from a PPO run of our own (nothing is downloaded).

    python scripts/make_offline_datasets.py --out data

1. trains `experiment=cartpole_ppo_fast` (seed 0) to a 100-episode mean of 475;
2. `rlrun-eval ... record=` 100 of its greedy episodes: `<out>/cartpole-ppo-expert-v0` (`experiment=cartpole_bc`);
3. plays episodes with uniformly random actions and writes `<out>/cartpole-mixed-v0`: expert episodes and
   random-policy ones, half of the dataset's episodes each (`experiment=cartpole_marwil`).
Each step is skipped when its output exists, so a second call only fills in what is missing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlrun.data.offline.dataset import DATA_DIR, open_dataset
from rlrun.data.offline.writer import RecordedEpisode, write_dataset

BIN = Path(sys.executable).parent
EXPERT = "cartpole-ppo-expert-v0"
MIXED = "cartpole-mixed-v0"
ENV_ID = "CartPole-v1"


def train_and_record_expert(out: Path, episodes: int, seed: int) -> Path:
    run_dir, dataset = out / "ppo-expert", out / EXPERT
    if not (run_dir / "checkpoints").is_dir():
        subprocess.run([str(BIN / "rlrun"), "experiment=cartpole_ppo_fast", f"seed={seed}", "logger.console=none",
                        f"hydra.run.dir={run_dir}"], check=True)
    if not (dataset / DATA_DIR).is_dir():
        subprocess.run([str(BIN / "rlrun-eval"), f"checkpoint={run_dir}", f"episodes={episodes}",
                        f"record={dataset}"], check=True)
    return dataset


def random_episodes(num_episodes: int, seed: int) -> list[RecordedEpisode]:
    """Episodes of the uniform random policy (its log-probability is log 1/|A| at every step)."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    logp = -np.log(env.action_space.n)
    episodes = []
    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
        done = False
        while not done:
            action = int(rng.integers(env.action_space.n))
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
            done = terminated or truncated
        episodes.append(RecordedEpisode(
            observations=np.asarray(observations, dtype=np.float32), actions=np.asarray(actions, dtype=np.int64),
            rewards=np.asarray(rewards, dtype=np.float32), terminations=np.asarray(terminations),
            truncations=np.asarray(truncations), action_logp=np.full(len(actions), logp, dtype=np.float32),
        ))
    env.close()
    return episodes


def read_episodes(spec: str | Path, limit: int) -> list[RecordedEpisode]:
    """The first `limit` episodes of a dataset."""
    dataset = open_dataset(str(spec))
    episodes = []
    for episode in dataset.iterate_episodes(range(min(limit, dataset.total_episodes))):
        episodes.append(RecordedEpisode(
            observations=episode.observations, actions=episode.actions, rewards=episode.rewards,
            terminations=episode.terminations, truncations=episode.truncations,
            action_logp=episode.infos["action_logp"][:-1],
        ))
    return episodes


def write_mixed(out: Path, expert: Path, num_expert: int, num_random: int, seed: int) -> Path:
    dataset = out / MIXED
    if (dataset / DATA_DIR).is_dir():
        return dataset
    episodes = read_episodes(expert, num_expert) + random_episodes(num_random, seed)
    write_dataset(str(dataset), episodes, env_id=ENV_ID, observation_space=gym.make(ENV_ID).observation_space,
                  action_space=gym.make(ENV_ID).action_space, algorithm_name="PPO expert + uniform random",
                  rlrun_metadata={"env": ENV_ID, "env_config": {}, "max_episode_steps": None,
                                  "expert": str(expert), "expert_episodes": num_expert,
                                  "random_episodes": num_random, "seed": seed})
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data"))
    parser.add_argument("--expert-episodes", type=int, default=100)
    parser.add_argument("--mixed-episodes", type=int, default=100, help="half expert, half random")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    expert = train_and_record_expert(args.out, args.expert_episodes, args.seed)
    half = args.mixed_episodes // 2
    mixed = write_mixed(args.out, expert, half, args.mixed_episodes - half, args.seed)
    print(f"expert dataset: {expert}\nmixed dataset:  {mixed}")


if __name__ == "__main__":
    main()

"""A run's saved config names one env (issue 23, item 11).

After `env.id=HalfCheetah-v5` the saved `.hydra/config.yaml` still said `env.name: cartpole`, the name of the
default env group option. The id is now the env's only name in the config, so no other key can go stale.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from rlrun.api import train
from rlrun.run.checkpoints import RUN_CONFIG


def test_saved_config_names_only_the_env_that_ran(tmp_path: Path) -> None:
    # In this process: rlrun.train composes and saves the config as the CLI does (the same Hydra job).
    run_dir = tmp_path / "run"
    train("env.id=Acrobot-v1", "stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
          "env_runners.num_envs_per_runner=2", "evaluation.episodes=1", "env.max_episode_steps=50",
          "logger.console=plain", f"hydra.run.dir={run_dir}")
    saved = yaml.safe_load((run_dir / RUN_CONFIG).read_text())
    assert saved["env"] == {"id": "Acrobot-v1", "env_config": {}, "max_episode_steps": 50, "backend": "sync",
                            "wrappers": [], "atari": None}
    assert "cartpole" not in yaml.safe_dump(saved).lower()

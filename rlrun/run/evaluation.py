"""Evaluate a saved policy: greedy episodes from a checkpoint, a JSON report in its run directory.

The algorithm config is rebuilt from the run's `.hydra/config.yaml` in embedded
mode (no Ray, no GPU) and only the module weights (and the normalisation
statistics, frozen, if the run had them) are loaded into one EnvRunner, the one
`Algorithm.evaluate` would use: with the run's seed the numbers equal the
`evaluation/*` metrics that the run logged for the same weights.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from rlrun.algorithms.algorithm import (
    EVALUATION_WORKER_INDEX,
    load_env_runner_state,
    load_module_weights,
    read_checkpoint_state,
)
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.from_config import build_algorithm_config
from rlrun.config.errors import ConfigError
from rlrun.data.offline.writer import new_dataset_dir, write_dataset
from rlrun.env.env_runner import summarize_episodes
from rlrun.env.env_runner_group import make_env_runner, normalization_in_state
from rlrun.env.multi_agent.env_runner import MultiAgentEnvRunner
from rlrun.env.runner_spec import EnvRunnerSpec
from rlrun.run.checkpoints import BEST, CHECKPOINTS_DIR, RUN_CONFIG, latest_checkpoint, locate
from rlrun.run.eval_request import EvalRequest
from rlrun.run.video import record_video

VIDEOS_DIR = "videos"


def evaluate_checkpoint(request: EvalRequest) -> dict[str, Any]:
    """Run the greedy policy of a checkpoint (a run directory means its best, else latest, checkpoint).

    Returns the report that is also written to `<run dir>/eval_<time>.json`.
    """
    run_dir, checkpoint = locate(Path(request.checkpoint))
    checkpoint = checkpoint or default_checkpoint(run_dir)
    state = read_checkpoint_state(checkpoint)
    config = embedded_config(run_dir, request.seed)
    # One thread: a small policy's forward passes are too short to split, and spare threads only spin.
    torch.set_num_threads(1)
    spec = config.env_runner_spec()
    if request.record is not None:
        _check_record_target(request.record, spec)
    runner = make_env_runner(spec, EVALUATION_WORKER_INDEX)
    try:
        runner.set_weights(load_module_weights(checkpoint))
        normalization = normalization_in_state(load_env_runner_state(checkpoint))
        if normalization is not None:  # the statistics the policy was trained with, frozen
            runner.sync_normalization(normalization)
        episodes = runner.sample_episodes(request.episodes, explore=request.explore,
                                          record=request.record is not None)
        # The pid keeps evaluations started in the same second (e.g. of several checkpoints) apart.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        video = None
        if request.video:
            video = record_video(
                runner.module, runner.normalizer, spec.env, request.video_episodes, config.seed,
                run_dir / VIDEOS_DIR / f"{checkpoint.name}_{stamp}", request.video_format,
                runner.mapping.agent_to_module if isinstance(runner, MultiAgentEnvRunner) else None,
            )
        dataset = None
        if request.record is not None:
            dataset = write_dataset(
                request.record, episodes["episodes"], env_id=config.env, observation_space=runner.observation_space,
                action_space=runner.action_space, algorithm_name=config.algo_class.__name__,
                rlrun_metadata={"checkpoint": str(checkpoint.resolve()), "iteration": state["iteration"],
                                "env": config.env, "env_config": config.env_config,
                                "max_episode_steps": config.max_episode_steps, "seed": config.seed,
                                "explore": request.explore},
            )
    finally:
        runner.stop()
    report = {
        "checkpoint": str(checkpoint),
        "iteration": state["iteration"],
        "env": config.env,
        "seed": config.seed,
        "explore": request.explore,
        **summarize_episodes(episodes["episode_returns"], episodes["episode_lens"]),
        "episode_returns": episodes["episode_returns"],
        "episode_lens": episodes["episode_lens"],
        "video": None if video is None else str(video),
        "dataset": None if dataset is None else str(dataset),
    }
    path = run_dir / f"eval_{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    report["report"] = str(path)
    return report


def _check_record_target(target: str, spec: EnvRunnerSpec) -> None:
    """Refuse a recording before playing any episode: nothing may be overwritten or recorded half-right."""
    new_dataset_dir(target)
    if spec.multi_agent is not None:
        raise ConfigError(f"record={target}: env '{spec.env.id}' is multi-agent; Minari datasets (and algo=bc/marwil) "
                          "are single-agent")


def embedded_config(run_dir: Path, seed: int | None) -> AlgorithmConfig:
    """The run's algorithm config, in one process: no env-runner or learner actors, no GPU."""
    cfg = OmegaConf.load(run_dir / RUN_CONFIG)
    cfg.env_runners.num = 0
    cfg.learners.num = 0
    cfg.learners.num_gpus_per_learner = 0
    if seed is not None:
        cfg.seed = seed
    return build_algorithm_config(cfg)


def default_checkpoint(run_dir: Path) -> Path:
    """What a run directory names when no checkpoint is given (rlrun-eval, rlrun.load): its best, else latest."""
    best = run_dir / CHECKPOINTS_DIR / BEST
    return best if best.is_dir() else latest_checkpoint(run_dir)


"""rlrun as a Ray Tune Trainable: one rlrun run directory per trial, one rlrun iteration per Tune iteration.

    from ray import tune
    from rlrun.tune import make_trainable

    trainable = make_trainable(["experiment=cartpole_ppo_fast", "stop.timesteps=50000"], run_root="sweeps/lr")
    tune.Tuner(trainable, param_space={"algo.lr": tune.loguniform(1e-4, 1e-2)},
               tune_config=tune.TuneConfig(metric="env_runners/episode_return_mean", mode="max")).fit()

A trial's config is rlrun's config composed from the base overrides plus the
trial's parameters (`{"algo.lr": 3e-4}` -> `algo.lr=0.0003`; compose.py composes
the base once per actor), checked as the CLI checks it. Its run directory
(`<run_root>/<trial name>`) is a normal one: `.hydra/config.yaml`, metrics.jsonl,
TensorBoard, checkpoints/ (best, final), so `rlrun-eval`, `rlrun-report` and `resume=` work on it. Tune checkpoints are
rlrun algorithm checkpoints; restoring one into a trial with other
hyperparameters (Population Based Training) continues the weights, optimizer
moments and counters at the trial's own learning rate and loss coefficients.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import OmegaConf
from ray import tune

from rlrun.algorithms.from_config import validated_algorithm_config
from rlrun.run.checkpoints import RUN_CONFIG
from rlrun.run.experiment import ExperimentRun
from rlrun.tune.compose import trial_config, trial_overrides

ALGORITHM_DIR = "algorithm"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
# One line per checkpoint a PBT trial continued from: where, at which iteration, with which parameters.
EXPLOITS_FILE = "pbt_exploits.jsonl"


class RLrunTrainable(tune.Trainable):
    """A Tune Trainable over an rlrun config; `make_trainable` binds the base overrides and the run root."""

    base_overrides: ClassVar[list[str]] = []
    run_root: ClassVar[str] = "tune_runs"

    def setup(self, config: dict[str, Any]) -> None:
        overrides = [*self.base_overrides, *trial_overrides(config)]
        cfg = trial_config(self.base_overrides, config)
        cfg.logger.console = "none"
        algo_config = validated_algorithm_config(cfg)
        self.run_dir = Path(self.run_root).resolve() / self.trial_name
        (self.run_dir / RUN_CONFIG).parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, self.run_dir / RUN_CONFIG)
        (self.run_dir / OVERRIDES_FILE).write_text(OmegaConf.to_yaml(OmegaConf.create(overrides)))
        self.run = ExperimentRun(cfg, algo_config, self.run_dir, trackers=[], layout="")
        self._last: dict[str, Any] = {}

    def step(self) -> dict[str, Any]:
        stop = self.run.step()
        metrics = dict(self.run.metrics)
        # A metric this iteration did not report (no episode finished, no evaluation) keeps its last value,
        # so schedulers always find the objective.
        self._last.update(metrics)
        result = {**self._last, "run_dir": str(self.run_dir)}
        result.pop("training_iteration", None)  # Tune counts its own (equal unless PBT restored another trial)
        result["rlrun_iteration"] = metrics["training_iteration"]
        if stop is not None:  # rlrun's own stop criterion (Tune marks every trial's last result `done`)
            result["done"] = True
            result["rlrun_stop"] = stop
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.run.algo.save_to_path(Path(checkpoint_dir) / ALGORITHM_DIR)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Continue from a checkpoint, this trial's or (PBT) another's, with this trial's own config."""
        self.run.algo.restore_from_path(Path(checkpoint_dir) / ALGORITHM_DIR)
        with open(self.run_dir / EXPLOITS_FILE, "a") as f:
            f.write(json.dumps({"iteration": self.run.algo.iteration, "checkpoint": str(checkpoint_dir),
                                "config": dict(self.config)}) + "\n")

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """The next trial in this actor (Tune's `reuse_actors`): no new process, no second torch import."""
        self.run.finish()
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        self.run.finish()


def make_trainable(base_overrides: list[str], run_root: str | Path = "tune_runs") -> type[RLrunTrainable]:
    """A Trainable class whose trials compose `base_overrides` + their parameters and run under `run_root`."""
    root = Path(run_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return type("RLrunTrainable", (RLrunTrainable,), {"base_overrides": list(base_overrides),
                                                      "run_root": str(root)})


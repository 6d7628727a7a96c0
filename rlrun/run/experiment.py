"""One experiment: build the algorithm from the validated config, train until a stop criterion, record everything.

rlrun/run/job.py checks the config and calls `train_until_stop`."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlrun.algorithms.algorithm import Algorithm
from rlrun.algorithms.algorithm_config import AlgorithmConfig
from rlrun.algorithms.off_policy import OffPolicyAlgorithm
from rlrun.callbacks import build_callbacks
from rlrun.cluster import ClusterInfo
from rlrun.config.errors import ConfigError
from rlrun.core.checkpointing import CheckpointWriteError
from rlrun.run.checkpoints import best_return, prune_checkpoints, save_best, save_checkpoint
from rlrun.run.console import make_display
from rlrun.run.interrupts import ImmediateInterrupt, stop_between_iterations
from rlrun.run.plots import EVAL_RETURN_KEY, plot_learning_curve, run_return
from rlrun.run.recorder import RunRecorder, flatten, read_metrics
from rlrun.run.resume import metrics_row, resume_checkpoint, rewind_run_dir
from rlrun.run.tensorboard import TensorBoardWriter
from rlrun.run.trackers.base import Tracker

log = logging.getLogger("rlrun")


def stop_reason(cfg: DictConfig, metrics: dict[str, Any]) -> str | None:
    """The first `stop.*` criterion the latest metrics reach, or None to keep going."""
    stop = cfg.stop
    ret = run_return(metrics)
    if stop.return_mean is not None and ret is not None and ret >= stop.return_mean:
        return f"return_mean >= {stop.return_mean}"
    if stop.timesteps is not None and metrics["num_env_steps_sampled_lifetime"] >= stop.timesteps:
        return f"timesteps >= {stop.timesteps}"
    if stop.iterations is not None and metrics["training_iteration"] >= stop.iterations:
        return f"iterations >= {stop.iterations}"
    if stop.time_s is not None and metrics["time_total_s"] >= stop.time_s:
        return f"time_s >= {stop.time_s}"
    return None


def train_until_stop(
    cfg: DictConfig, config: AlgorithmConfig, run_dir: Path, cluster: ClusterInfo, trackers: list[Tracker]
) -> float | None:
    """The training loop of a validated run: record every iteration, checkpoint, stop on a criterion."""
    run = ExperimentRun(cfg, config, run_dir, trackers, cluster.describe(config))
    error: BaseException | None = None  # what ended the loop, if not a stop criterion: the trackers' run status
    # A Ctrl-C while finishing also waits, so the final checkpoint is whole unless a second one comes.
    with stop_between_iterations() as interrupted:
        try:
            while run.step() is None:
                if interrupted():
                    raise KeyboardInterrupt
        except BaseException as e:
            error = e
            raise
        finally:
            run.finish(error)
    return run.metrics.get(EVAL_RETURN_KEY)


class ExperimentRun:
    """A validated run in its run directory, one iteration per `step()`; `finish()` on every exit path.

    `step()` trains an iteration, evaluates when due, records the metrics, keeps
    `checkpoints/best` and the periodic checkpoints, and returns the stop criterion
    it reached (None to go on). The CLI loops over it; a Tune trial
    (rlrun/tune/trainable.py) calls it once per Tune iteration.

    The driver's callbacks (`callbacks=[...]`, then the trackers and TensorBoard) are the
    recorder's; the run calls their hooks where it builds, evaluates and checkpoints.
    """

    def __init__(
        self, cfg: DictConfig, config: AlgorithmConfig, run_dir: Path, trackers: list[Tracker], layout: str
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.algo = config.algo_class(config, smoothing_episodes=cfg.logger.smoothing_episodes)
        if isinstance(self.algo, OffPolicyAlgorithm):
            self.algo.checkpoint_replay_buffer = cfg.checkpoint.replay_buffer
        try:
            purge_step = resume(self.algo, cfg, run_dir) if cfg.resume is not None else None
            hparams = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
            # Trackers before TensorBoard: one that cannot start leaves no new event file behind.
            tensorboard = [TensorBoardWriter(hparams, purge_step)] if cfg.logger.tensorboard else []
            callbacks = [*build_callbacks(config.callback_classes), *trackers, *tensorboard]
            self.recorder = RunRecorder(run_dir, hparams, callbacks)
            self.callbacks = self.recorder.callbacks
        except BaseException:
            self.algo.stop()
            raise
        try:
            self.callbacks.call("on_algorithm_init", algorithm=self.algo)
        except BaseException as e:
            self.algo.stop()
            self.recorder.close(e)
            raise
        for line in self.recorder.tracking:
            log.info("tracking: %s", line)
        self.display = make_display(cfg.logger.console.value, cfg.stop, cfg.logger.get("console_metrics", ()))
        header = f"rlrun: {cfg.algo.name} on {cfg.env.id}, seed {cfg.seed} -> {run_dir}\n{layout}"
        self.display.start("\n".join([header, *self.recorder.tracking]))
        log.info("config:\n%s", OmegaConf.to_yaml(cfg))
        self.metrics: dict[str, Any] = {}
        self.reason = "interrupted"
        self._best = best_return(run_dir)

    def step(self) -> str | None:
        """One iteration; returns the stop criterion it reached, or None."""
        cfg, algo = self.cfg, self.algo
        results = flatten(algo.train())
        stop = stop_reason(cfg, results)
        every_eval = cfg.evaluation.every_iterations
        evaluate = stop is not None or bool(every_eval and algo.iteration % every_eval == 0)
        if evaluate:
            results.update(self._evaluate())

        def final_evaluation() -> dict[str, Any]:  # a callback ends the run: it ends with an evaluation too
            nonlocal evaluate
            evaluated, evaluate = evaluate, True
            return {} if evaluated else self._evaluate()

        self.metrics, asked = self.recorder.record(algo, results, final_evaluation)
        stop = stop or asked
        self.display.update(self.metrics)
        if evaluate and (self._best is None or self.metrics[EVAL_RETURN_KEY] > self._best):
            self._best = self.metrics[EVAL_RETURN_KEY]
            self._saved(save_best(algo, self.run_dir))
        every = cfg.checkpoint.every_iterations
        if every and algo.iteration % every == 0:
            self._saved(save_checkpoint(algo, self.run_dir))
            prune_checkpoints(self.run_dir, cfg.checkpoint.keep_last)
        if stop is not None:
            self.reason = stop
        return stop

    def _evaluate(self) -> dict[str, Any]:
        """Greedy evaluation episodes, through the callbacks' `on_evaluate_end`; flat `evaluation/*` metrics."""
        result = self.algo.evaluate(self.cfg.evaluation.episodes)
        self.callbacks.call("on_evaluate_end", algorithm=self.algo, result=result)
        return flatten(result)

    def _saved(self, path: Path) -> None:
        self.callbacks.call("on_checkpoint_saved", algorithm=self.algo, path=path)

    def finish(self, error: BaseException | None = None) -> None:
        """Final checkpoint, stop the workers, learning curve, close the records (trackers: failed if `error`)."""
        cfg, algo = self.cfg, self.algo
        try:
            # An abandoned iteration is no state to resume from; after a checkpoint the disk refused, the
            # previous checkpoint is the one to resume from and a final one would fail the same way.
            if not isinstance(error, (ImmediateInterrupt, CheckpointWriteError)):
                self._saved(save_checkpoint(algo, self.run_dir, final=True))
        finally:
            algo.stop()
            try:
                plot_learning_curve(read_metrics(self.run_dir), self.run_dir / "learning_curve.png",
                                    f"{cfg.algo.name} on {cfg.env.id}")
            except OSError as e:  # a full disk: the run's error (or end) is the news, not the missing plot
                log.warning("learning curve not written: %s", e.strerror or e)
            self.recorder.close(error)  # after the plot and the final checkpoint: trackers upload both
            self.display.finish(self.metrics, self.run_dir, self.reason)
            log.info("finished (%s) after %d iterations at %s", self.reason, algo.iteration, time.strftime("%X"))


def resume(algo: Algorithm, cfg: DictConfig, run_dir: Path) -> int:
    """Restore the checkpoint `resume=` names and rewind the run directory to it.

    Returns the first TensorBoard step after the checkpoint. Nothing in the run
    directory changes unless the checkpoint loads and the run has not yet
    reached its stop criteria.
    """
    checkpoint = resume_checkpoint(cfg.resume, run_dir)
    algo.restore_from_path(checkpoint)
    last = metrics_row(run_dir, algo.iteration)
    reason = stop_reason(cfg, last) if last is not None else None
    if reason is not None:
        raise ConfigError(f"the run already reached {reason} at iteration {algo.iteration}; raise stop.* to go on")
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
    rewind_run_dir(run_dir, checkpoint, algo.iteration, cfg, overrides)
    message = f"resuming {run_dir} from {checkpoint.name} (iteration {algo.iteration})"
    log.info(message)
    if cfg.logger.console.value != "none":
        print(message, flush=True)
    return algo.counters["num_env_steps_sampled_lifetime"] + 1

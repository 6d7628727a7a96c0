"""TensorBoard as a callback: the run's config (text and hparams) at the start, every row's scalars, closed at the end.

Scalars are plotted against env steps sampled (`num_env_steps_sampled_lifetime`), so runs of different batch
sizes line up. The config goes in twice: as text, and as hparams (flattened to `algo.lr`-style keys) so that
`tensorboard --logdir outputs` compares runs in its HPARAMS tab against their training and evaluation returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlrun.callbacks import Callback
from rlrun.run.recorder import flatten_hparams, scalars

TENSORBOARD_DIR = "tensorboard"
# The scalars the HPARAMS tab shows beside each run's hparams.
HPARAM_METRICS = ("env_runners/episode_return_mean", "evaluation/episode_return_mean")


class TensorBoardWriter(Callback):
    """Event files in `<run>/tensorboard`. A resumed run passes `purge_step`, the first step after its checkpoint:
    TensorBoard then hides what the interrupted process logged from that step on."""

    def __init__(self, config: Mapping[str, Any] | None = None, purge_step: int | None = None) -> None:
        self.config = config
        self.purge_step = purge_step
        self._writer: Any = None

    def on_run_start(self, *, run_dir: Path, params: dict[str, Any], **kwargs: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR), purge_step=self.purge_step)
        if self.config:
            self._writer.add_text("config", "```\n" + json.dumps(dict(self.config), indent=2) + "\n```")
            self._add_hparams(self.config)

    def _add_hparams(self, config: Mapping[str, Any]) -> None:
        """Into this run's own event file: `SummaryWriter.add_hparams` would start a separate sub-run."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(flatten_hparams(config), dict.fromkeys(HPARAM_METRICS, 0.0)):
            self._writer.file_writer.add_summary(summary)

    def on_train_result(self, *, result: dict[str, Any], **kwargs: Any) -> None:
        step = int(result.get("num_env_steps_sampled_lifetime", result.get("training_iteration", 0)))
        for key, value in scalars(result).items():
            self._writer.add_scalar(key, value, global_step=step)

    def on_run_end(self, *, error: BaseException | None, **kwargs: Any) -> None:
        self._writer.close()

"""A Learner that reads its own training rows: a disjoint shard of the dataset per DDP rank.

Unlike the on-policy learners, which all receive the whole sampled batch, rank r
of n reads `share(r)` rows of every update from its shard (the shares sum to
`train_batch_size`) and cuts them into as many minibatches as the whole update
has, so all ranks step together; each rank's gradient is weighted by its share of
every minibatch's rows, so the step is the gradient of the mean over all ranks'
rows.

The reader's position is the number of rows trained, kept in the learner
variables (`dataset_rows_trained`), so it is in every checkpoint and a resumed
run continues with the very rows it would have read next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from rlrun.core.columns import DEFAULT_MODULE_ID
from rlrun.core.learner import TorchLearner
from rlrun.data.offline.dataset import dataset_info
from rlrun.data.offline.reader import ShardReader

ROWS_TRAINED = "dataset_rows_trained"


class OfflineTorchLearner(TorchLearner):
    """Streams its shard of `config.dataset`; `update_from_dataset()` is one update on the next rows."""

    def needs_value_bootstrap(self) -> bool:
        """Whether the rows must carry what bootstraps a cut-off episode's value target (`Columns.FINAL_OBS`)."""
        return False

    def build(self) -> None:
        super().build()
        config = self.config
        self._reader = ShardReader(
            dataset_info(config.dataset), rank=self._rank, world_size=self._world_size,
            memory_rows=config.dataset_memory_rows, seed=config.seed, gamma=config.gamma,
            bootstrap=self.needs_value_bootstrap(),
        )
        self.learner_vars[DEFAULT_MODULE_ID][ROWS_TRAINED] = 0

    def share(self, rank: int) -> int:
        """Rows rank `rank` reads per update: `train_batch_size` split over the ranks, differing by at most one."""
        return _split_sizes(self.config.train_batch_size, self._world_size)[rank]

    def update_from_dataset(self, *, timesteps: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Read this rank's next rows and update on them (all ranks call this together)."""
        rows = self._reader.next_rows(self.share(self._rank))
        self.learner_vars[DEFAULT_MODULE_ID][ROWS_TRAINED] += self.config.train_batch_size
        return self.update(batch=rows, timesteps=timesteps)

    def minibatch_shares(self, num_rows: int, steps: None = None) -> Iterator[tuple[torch.Tensor, float, int]]:
        """This rank's rows cut into the update's number of minibatches; shares from every rank's row count.

        A row is one step (`steps` None): offline algorithms train no recurrent models.
        """
        num_minibatches = max(1, math.ceil(self.config.train_batch_size / self.config.minibatch_size))
        parts = torch.tensor_split(torch.randperm(num_rows, generator=self._generator), num_minibatches)
        all_ranks = [_split_sizes(self.share(r), num_minibatches) for r in range(self._world_size)]
        for i, own in enumerate(parts):
            minibatch_rows = sum(sizes[i] for sizes in all_ranks)
            yield own, len(own) / minibatch_rows, minibatch_rows

    def set_state(self, state: Mapping[str, Any]) -> None:
        super().set_state(state)
        trained = int(self.learner_vars[DEFAULT_MODULE_ID][ROWS_TRAINED])
        self._reader.seek(trained // self.config.train_batch_size * self.share(self._rank))


def _split_sizes(rows: int, parts: int) -> list[int]:
    """The part sizes `torch.tensor_split` makes of `rows` rows: the first `rows % parts` get one more."""
    return [rows // parts + (i < rows % parts) for i in range(parts)]

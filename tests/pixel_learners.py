"""Each algorithm's own learner, plus a record of what its loss is handed: the dtype and device of every
observation column, per module (`algo.learner_class=pixel_learners:PPOProbe` from the CLI).

The learner appends one JSON line per new (module, column, dtype, device) to the file named by the environment
variable RLRUN_PIXEL_PROBE, the module's parameters' device beside it; Ray's workers inherit the variable from
the `rlrun` process that starts them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rlrun.algorithms.appo.appo_learner import APPOTorchLearner
from rlrun.algorithms.bc.bc_learner import BCTorchLearner
from rlrun.algorithms.dqn.dqn_learner import DQNTorchLearner
from rlrun.algorithms.impala.impala_learner import IMPALATorchLearner
from rlrun.algorithms.marwil.marwil_learner import MARWILTorchLearner
from rlrun.algorithms.ppo.ppo_learner import PPOTorchLearner
from rlrun.algorithms.sac.sac_learner import SACTorchLearner
from rlrun.core.columns import Columns

PROBE_ENV = "RLRUN_PIXEL_PROBE"
# The global state of a central value function (MAPPO) is made of the agents' observations too.
OBS_COLUMNS = (Columns.OBS, Columns.NEXT_OBS, Columns.STATE)


class ObsProbe:
    """Mixin before a learner class: records the observation columns its loss sees, then computes the loss."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        seen = self.__dict__.setdefault("_probe_seen", set())
        for column in OBS_COLUMNS:
            if column in batch:
                tensor = batch[column]
                record = (str(module_id), column, str(tensor.dtype).removeprefix("torch."), str(tensor.device),
                          str(next(self.module[module_id].parameters()).device), tuple(tensor.shape))
                if record not in seen:
                    seen.add(record)
                    _write(dict(zip(("module", "column", "dtype", "device", "module_device", "shape"), record)))
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)


def _write(record: dict[str, Any]) -> None:
    path = os.environ.get(PROBE_ENV)
    if path:
        with Path(path).open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_probe(path: Path) -> list[dict[str, Any]]:
    """The records a run's learners wrote (none if they never computed a loss)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class PPOProbe(ObsProbe, PPOTorchLearner):
    pass


class IMPALAProbe(ObsProbe, IMPALATorchLearner):
    pass


class APPOProbe(ObsProbe, APPOTorchLearner):
    pass


class DQNProbe(ObsProbe, DQNTorchLearner):
    pass


class SACProbe(ObsProbe, SACTorchLearner):
    pass


class BCProbe(ObsProbe, BCTorchLearner):
    pass


class MARWILProbe(ObsProbe, MARWILTorchLearner):
    pass

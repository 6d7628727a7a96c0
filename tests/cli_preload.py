"""What the tests' CLI fork server (tests/cli_server.py) imports once, so that no served run pays for it.

The modules an embedded run of each console script imports, with their cost on this machine's cores:
torch (1.1 s of CPU), torch._dynamo (1.3 s, imported by `Optimizer.step`), matplotlib's figure for the
learning-curve plot (0.6 s), TensorBoard's writer, gymnasium, Hydra and rlrun's own. Ray is left out:
a process that has imported it should not fork (its gRPC state), and a run imports it only in Ray mode.
"""

import matplotlib.backends.backend_agg  # noqa: F401
import matplotlib.figure  # noqa: F401
import torch  # noqa: F401
import torch._dynamo  # noqa: F401
import torch.utils.tensorboard  # noqa: F401

import rlrun.algorithms.from_config  # noqa: F401
import rlrun.cli  # noqa: F401
import rlrun.cli_eval  # noqa: F401
import rlrun.report.cli  # noqa: F401
import rlrun.run.experiment  # noqa: F401

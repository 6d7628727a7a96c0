"""Learner: owns a module's weights and optimizers and turns batches into gradient updates.

`Learner` fixes the update loop and the state/checkpoint contract of API.md; an
algorithm only supplies `compute_loss_for_module` (and, if it needs them, the
non-gradient hooks before and after the update). `TorchLearner` is the PyTorch
implementation every shipped algorithm uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from rlrun.core import checkpointing as ckpt
from rlrun.core.arrays import as_tensor
from rlrun.core.columns import (
    COMPONENT_LEARNER_VARS,
    COMPONENT_OPTIMIZER,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
    Columns,
)
from rlrun.core.learner import distributed
from rlrun.core.rl_module import MultiRLModule
from rlrun.core.schedules import PiecewiseSchedule

if TYPE_CHECKING:
    from rlrun.algorithms.algorithm_config import AlgorithmConfig

TensorDict = dict[str, torch.Tensor]
ALL_COMPONENTS = (COMPONENT_RL_MODULE, COMPONENT_OPTIMIZER, COMPONENT_LEARNER_VARS)


class Learner:
    """One copy of the trainable state and the loop that updates it.

    Call `build()` before anything else: construction only records the config,
    so a Learner can be created cheaply (e.g. inside a remote actor) and built
    where it will run.
    """

    def __init__(
        self,
        *,
        config: AlgorithmConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
    ) -> None:
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self._built = False

    # -- hooks an algorithm overrides -------------------------------------------------

    def configure_optimizers_for_module(self, module_id: str, config: AlgorithmConfig) -> torch.optim.Optimizer:
        """Create the optimizer of one module (default: Adam over all its parameters).

        The fused kernel updates all parameters in one call: for small policy
        networks the per-tensor loop of the default implementation costs more
        than the arithmetic.
        """
        return torch.optim.Adam(self.module[module_id].parameters(), lr=config.lr, eps=1e-5, fused=True)

    def compute_loss_for_module(
        self, *, module_id: str, config: AlgorithmConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        """The scalar loss of one module on one minibatch."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss_for_module")

    def before_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Non-gradient changes before the update; the default applies the lr schedule."""
        if self._lr_schedule is None:
            return
        lr = self._lr_schedule.value(timesteps.get("num_env_steps_sampled_lifetime", 0))
        for optimizer in self._optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Non-gradient changes after the update (KL coefficients, target networks, ...)."""

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        """Turn a sampled time-major batch into flat training rows on the learner's device.

        Rows with `loss_mask == 0` (autoreset steps) are dropped here, so losses
        see only real transitions. Algorithms that postprocess whole
        trajectories (PPO's GAE) override this and call it last.
        """
        mask = batch.get(Columns.LOSS_MASK)
        keep = None if mask is None else as_tensor(mask).bool().reshape(-1)
        rows: TensorDict = {}
        for key, value in batch.items():
            if key in (Columns.LOSS_MASK, Columns.BOOTSTRAP_OBS):
                continue
            t = as_tensor(value)
            if mask is not None:
                t = t.reshape(-1, *t.shape[2:])[keep]
            rows[key] = t.to(self.device)
        return rows

    # -- the update loop --------------------------------------------------------------

    def build(self) -> None:
        """Create the module(s), optimizers and the RNG used for minibatch shuffling."""
        config = self.config
        self._rank, self._world_size = distributed.world()
        # The learner's CPU share is its intra-op thread count; more threads than
        # cores (or busy-waiting beside the sampler) only slows small networks down.
        torch.set_num_threads(max(1, int(config.num_cpus_per_learner)))
        self.device = self._pick_device()
        module = config.build_rl_module(self.observation_space, self.action_space)
        self._module = MultiRLModule({DEFAULT_MODULE_ID: module}).to(self.device)
        # In a process group the update loop goes through DDP, which all-reduces the gradients.
        self._train_forward = {
            mid: distributed.ddp_forward_train(m, self.device) if self._world_size > 1 else m.forward_train
            for mid, m in self._module.items()
        }
        self._built = True  # the optimizer hook below already uses `self.module`
        self._optimizers = {mid: self.configure_optimizers_for_module(mid, config) for mid in self._module}
        self._lr_schedule = PiecewiseSchedule(config.lr_schedule) if config.lr_schedule else None
        self._generator = torch.Generator().manual_seed(config.seed)
        # Metrics logged outside `update()` (e.g. calling the loss by hand) land here and are dropped.
        self._minibatch_metrics: list[TensorDict] = [{}]
        self.learner_vars: dict[str, dict[str, float]] = {mid: {} for mid in self._module}

    def _pick_device(self) -> torch.device:
        if self.config.num_gpus_per_learner > 0:
            if not torch.cuda.is_available():
                raise RuntimeError("learners.num_gpus_per_learner > 0 but no CUDA device is visible")
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    @property
    def module(self) -> MultiRLModule:
        self._check_built()
        return self._module

    def update(self, *, batch: Mapping[str, Any], timesteps: Mapping[str, int] | None = None) -> dict[str, Any]:
        """One blocking update: `num_epochs` passes of shuffled minibatches over `batch`.

        `batch` is a single-agent column dict or a mapping module id -> batch.
        Returns per-module means of the logged metrics over all minibatches.
        """
        self._check_built()
        timesteps = dict(timesteps or {})
        per_module = batch if self._is_multi_module_batch(batch) else {DEFAULT_MODULE_ID: batch}
        self.before_gradient_based_update(timesteps=timesteps)
        results = {mid: self._update_module(mid, self.build_train_batch(mid, b)) for mid, b in per_module.items()}
        # Hooks after the update read this update's metrics (e.g. PPO's mean KL).
        self.last_update_results = results
        self.after_gradient_based_update(timesteps=timesteps)
        for mid, result in results.items():
            result.update(self.learner_vars[mid])
        return results

    def _is_multi_module_batch(self, batch: Mapping[str, Any]) -> bool:
        return all(isinstance(v, Mapping) for v in batch.values()) and set(batch) <= set(self._module)

    def num_minibatches(self, num_rows: int) -> int:
        """Minibatches per epoch of a `num_rows` batch; every data-parallel rank computes the same count."""
        return max(1, num_rows // self.config.minibatch_size)

    def _update_module(self, module_id: str, rows: TensorDict) -> dict[str, float]:
        optimizer = self._optimizers[module_id]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        num_rows = len(next(iter(rows.values())))
        # Counted on the whole batch, so every rank runs the same number of steps (no DDP deadlock).
        num_minibatches = self.num_minibatches(num_rows)
        if self._world_size > 1:
            rows = distributed.shard(rows, self._rank, self._world_size)
        n = len(next(iter(rows.values())))
        mb_size = min(math.ceil(self.config.minibatch_size / self._world_size), n)
        clip = self.config.grad_clip if self.config.grad_clip else math.inf
        self._minibatch_metrics: list[TensorDict] = []
        for _ in range(self.config.num_epochs):
            perm = torch.randperm(n, generator=self._generator).to(self.device)
            for i in range(num_minibatches):
                idx = perm[(i * mb_size) % n:][:mb_size]
                minibatch = {k: v[idx] for k, v in rows.items()}
                self._minibatch_metrics.append({})
                fwd_out = self._train_forward[module_id](minibatch)
                loss = self.compute_loss_for_module(
                    module_id=module_id, config=self.config, batch=minibatch, fwd_out=fwd_out
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
                optimizer.step()
                self.log_metrics(total_loss=loss.detach(), gradients_default_optimizer_global_norm=grad_norm)
        metrics = self._mean_minibatch_metrics()
        metrics["default_optimizer_learning_rate"] = optimizer.param_groups[0]["lr"]
        metrics["num_module_steps_trained"] = num_rows
        return metrics

    def _mean_minibatch_metrics(self) -> dict[str, float]:
        """Means over all minibatches (and all ranks), fetched from the device in one transfer."""
        keys = list(self._minibatch_metrics[0])
        means = torch.stack([torch.stack([m[k] for m in self._minibatch_metrics]).mean() for k in keys])
        if self._world_size > 1:
            means = distributed.all_reduce_mean(means)
        return dict(zip(keys, means.tolist()))

    def log_metrics(self, **scalars: torch.Tensor) -> None:
        """Record scalar tensors for the current minibatch (averaged over the update).

        Kept as tensors so the update loop never forces a device sync per minibatch.
        """
        self._minibatch_metrics[-1].update({k: v.detach().float() for k, v in scalars.items()})

    # -- state ------------------------------------------------------------------------

    def get_state(self, components: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Weights (numpy), optimizer states (CPU tensors) and learner variables, by component."""
        self._check_built()
        wanted = _components(components)
        state: dict[str, Any] = {}
        if COMPONENT_RL_MODULE in wanted:
            state[COMPONENT_RL_MODULE] = self._module.get_state()
        if COMPONENT_OPTIMIZER in wanted:
            state[COMPONENT_OPTIMIZER] = {mid: _to_cpu(opt.state_dict()) for mid, opt in self._optimizers.items()}
        if COMPONENT_LEARNER_VARS in wanted:
            state[COMPONENT_LEARNER_VARS] = {mid: dict(v) for mid, v in self.learner_vars.items()}
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Apply whichever components `state` holds; the others stay untouched."""
        self._check_built()
        if COMPONENT_RL_MODULE in state:
            self._module.set_state(state[COMPONENT_RL_MODULE])
        for mid, opt_state in state.get(COMPONENT_OPTIMIZER, {}).items():
            self._optimizers[mid].load_state_dict(opt_state)
        for mid, learner_vars in state.get(COMPONENT_LEARNER_VARS, {}).items():
            self.learner_vars[mid].update(learner_vars)

    def get_rng_state(self) -> torch.Tensor:
        """The minibatch-shuffling RNG: without it a restored learner would not continue exactly.

        All data-parallel ranks share one seed, so rank 0's state is every rank's state.
        """
        return self._generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self._generator.set_state(state)

    def save_to_path(self, path: str | Path) -> Path:
        """Write weights (safetensors), optimizer state (weights-only torch file) and vars (JSON)."""
        return save_learner_checkpoint(path, self.get_state(), self.get_rng_state())

    def restore_from_path(self, path: str | Path) -> None:
        """Load what `save_to_path` wrote; a missing or corrupt file raises CheckpointError."""
        state, rng = load_learner_checkpoint(path)
        self.set_state(state)
        self.set_rng_state(rng)

    def _check_built(self) -> None:
        if not self._built:
            raise RuntimeError(f"call {type(self).__name__}.build() before using the learner")


class TorchLearner(Learner):
    """The PyTorch Learner; algorithms subclass it and implement `compute_loss_for_module`."""


def save_learner_checkpoint(path: str | Path, state: Mapping[str, Any], rng: torch.Tensor) -> Path:
    """Atomically write a learner's full state (as `get_state()` returns it) and its shuffling RNG."""
    with ckpt.atomic_directory(path) as tmp:
        for mid, weights in state[COMPONENT_RL_MODULE].items():
            ckpt.save_arrays(tmp / f"module_{mid}.safetensors", weights)
        ckpt.save_torch(tmp / "optimizer.pt", state[COMPONENT_OPTIMIZER])
        ckpt.save_json(tmp / "learner_vars.json", state[COMPONENT_LEARNER_VARS])
        ckpt.save_torch(tmp / "rng.pt", rng)
    return Path(path)


def load_learner_checkpoint(path: str | Path) -> tuple[dict[str, Any], torch.Tensor]:
    """(state, rng) from a `save_learner_checkpoint` directory; missing or corrupt files raise CheckpointError."""
    path = Path(path)
    modules = sorted(path.glob("module_*.safetensors"))
    if not path.is_dir() or not modules:
        raise ckpt.CheckpointError(f"learner checkpoint {path} does not exist or holds no module weights")
    state = {
        COMPONENT_RL_MODULE: {f.stem.removeprefix("module_"): ckpt.load_arrays(f) for f in modules},
        COMPONENT_OPTIMIZER: ckpt.load_torch(path / "optimizer.pt"),
        COMPONENT_LEARNER_VARS: ckpt.load_json(path / "learner_vars.json"),
    }
    return state, ckpt.load_torch(path / "rng.pt")


def _components(components: str | Sequence[str] | None) -> tuple[str, ...]:
    if components is None:
        return ALL_COMPONENTS
    wanted = (components,) if isinstance(components, str) else tuple(components)
    unknown = set(wanted) - set(ALL_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown state components {sorted(unknown)}; allowed: {list(ALL_COMPONENTS)}")
    return wanted


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj

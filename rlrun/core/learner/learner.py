"""Learner: owns a module's weights and optimizers and turns batches into gradient updates.

`Learner` fixes the update loop and the state/checkpoint contract of API.md; an
algorithm only supplies `compute_loss_for_module` (and, if it needs them, the
non-gradient hooks before and after the update). `TorchLearner` is the PyTorch
implementation every shipped algorithm uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.core import checkpointing as ckpt
from rlrun.core.arrays import as_tensor
from rlrun.core.columns import (
    BOOTSTRAP_COLUMNS,
    COMPONENT_LEARNER_VARS,
    COMPONENT_OPTIMIZER,
    COMPONENT_RL_MODULE,
    DEFAULT_MODULE_ID,
    RECURRENT_STEP_INPUTS,
    Columns,
)
from rlrun.core.learner import distributed
from rlrun.core.learner.failures import NonFiniteUpdateError
from rlrun.core.learner.sequences import Sequences
from rlrun.core.rl_module import MultiRLModule
from rlrun.core.rl_module.catalog import is_image
from rlrun.core.schedules import PiecewiseSchedule

if TYPE_CHECKING:
    from rlrun.core.learner.config import LearnerConfig
    from rlrun.core.rl_module.rl_module import RLModule

TensorDict = dict[str, torch.Tensor]
ALL_COMPONENTS = (COMPONENT_RL_MODULE, COMPONENT_OPTIMIZER, COMPONENT_LEARNER_VARS)
DEFAULT_OPTIMIZER = "default_optimizer"
# The learner variable that counts a module's skipped gradient steps (`learners/<module>/num_non_finite_updates`).
NUM_NON_FINITE_UPDATES = "num_non_finite_updates"


class Learner:
    """One copy of the trainable state and the loop that updates it.

    Call `build()` before anything else: construction only records the config,
    so a Learner can be created cheaply (e.g. inside a remote actor) and built
    where it will run.
    """

    def __init__(
        self,
        *,
        config: LearnerConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
    ) -> None:
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self._built = False

    # -- hooks an algorithm overrides -------------------------------------------------

    def configure_optimizers_for_module(
        self, module_id: str, config: LearnerConfig
    ) -> torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer]:
        """Create the optimizer(s) of one module (default: Adam over all its parameters).

        Return one optimizer (named `default_optimizer`) or a mapping name ->
        optimizer (SAC: actor, critic, alpha), each over its own parameters. One
        loss trains them all: every optimizer steps after each backward pass.

        The fused kernel updates all parameters in one call: for small policy
        networks the per-tensor loop of the default implementation costs more
        than the arithmetic.
        """
        return torch.optim.Adam(self.module[module_id].parameters(), lr=config.lr, eps=1e-5, fused=True)

    def compute_loss_for_module(
        self, *, module_id: str, config: LearnerConfig, batch: TensorDict, fwd_out: TensorDict
    ) -> torch.Tensor:
        """The scalar loss of one module on one minibatch."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss_for_module")

    def before_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Non-gradient changes before the update; the default applies the lr schedule."""
        if self._lr_schedule is None:
            return
        lr = self._lr_schedule.value(timesteps.get("num_env_steps_sampled_lifetime", 0))
        for optimizers in self._optimizers.values():
            for optimizer in optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = lr

    def after_gradient_based_update(self, *, timesteps: Mapping[str, int]) -> None:
        """Non-gradient changes after the update (KL coefficients, target networks, ...)."""

    def after_gradient_step(self, *, module_id: str) -> None:
        """Non-gradient changes after each minibatch's optimizer step: an update may hold many steps, and
        some changes must follow every one (SAC's polyak-averaged target networks)."""

    def build_train_batch(self, module_id: str, batch: Mapping[str, Any]) -> TensorDict:
        """Turn a sampled time-major batch into flat training rows on the learner's device.

        Rows with `loss_mask == 0` (autoreset steps) are dropped here, so losses
        see only real transitions. Algorithms that postprocess whole
        trajectories (PPO's GAE) override this and call it last.

        A recurrent module trains on sequences instead (`sequence_batch`).
        """
        if self.trains_sequences(module_id):
            return self.sequence_batch(batch)
        mask = batch.get(Columns.LOSS_MASK)
        keep = None if mask is None else as_tensor(mask).bool().reshape(-1)
        rows: TensorDict = {}
        for key, value in batch.items():
            if key == Columns.LOSS_MASK or key in BOOTSTRAP_COLUMNS.values():
                continue
            t = as_tensor(value)
            if mask is not None:
                t = t.reshape(-1, *t.shape[2:])[keep]
            rows[key] = t.to(self.device)
        return rows

    def trains_sequences(self, module_id: str) -> bool:
        """Whether this learner's rows for the module are padded sequences (a recurrent module): minibatches take
        whole sequences and the loss reads their trained steps, flattened. A learner whose rows are whole
        trajectories (IMPALA) says False: its recurrent module replays their sequences itself."""
        return self._module[module_id].is_stateful()

    def sequence_batch(self, batch: Mapping[str, Any]) -> TensorDict:
        """A time-major batch as whole padded sequences (rlrun/core/learner/sequences.py), on the device.

        Every row column becomes `[N, L, ...]`, `Columns.STATE_IN` the `[N, S]` state each sequence starts
        from, and `Columns.LOSS_MASK` the `[N, L]` steps that train (real, and no autoreset row). A
        sequence with no such step is left out: a loss over none would be a mean of nothing.
        """
        loss_mask = np.asarray(batch[Columns.LOSS_MASK], dtype=bool)
        sequences = Sequences.cut(loss_mask, self.config.model_config["max_seq_len"])
        trains = sequences.mask & sequences.gather(loss_mask)
        keep = trains.any(axis=1)
        sequences, trains = sequences.select(keep), trains[keep]
        rows: TensorDict = {Columns.LOSS_MASK: torch.from_numpy(trains).to(self.device),
                            Columns.STATE_IN: as_tensor(sequences.first(batch[Columns.STATE_IN])).to(self.device)}
        for key, value in batch.items():
            if key not in rows and key not in BOOTSTRAP_COLUMNS.values():
                rows[key] = as_tensor(sequences.gather(value)).to(self.device)
        return rows

    def fragment_values(self, module_id: str, batch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The value function on a time-major batch: `[T, B]` values of its rows and `[B]` of its bootstrap
        observations (after the fragment's last step), with the learner's current weights.

        A recurrent module replays the fragment as sequences from its recorded states, and its bootstrap
        observations as one step of each copy from the states recorded for them (`BOOTSTRAP_STATE_IN`).
        """
        module = self.module[module_id]
        if module.is_stateful():
            return self._recurrent_fragment_values(module, batch)
        steps, envs = np.shape(batch[Columns.OBS])[:2]
        # Each column of the value inputs with its bootstrap row appended (a central value function reads the
        # state too): [T + 1, B, ...].
        extended = {column: np.concatenate([np.asarray(batch[column]), np.asarray(batch[bootstrap])[None]])
                    for column, bootstrap in BOOTSTRAP_COLUMNS.items() if column in batch}
        inputs = {column: as_tensor(value.reshape((steps + 1) * envs, *value.shape[2:])).to(self.device)
                  for column, value in extended.items()}
        with torch.no_grad():
            values = module.compute_values(inputs).cpu().numpy().reshape(steps + 1, envs)
        return values[:steps], values[steps]

    def _recurrent_fragment_values(self, module: RLModule, batch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """`fragment_values` of a recurrent module: the `[T, B]` rows as the sequences training cuts, and the
        bootstrap observations as sequences of one step, each from the state its env runner recorded for it."""
        sequences = Sequences.cut(np.asarray(batch[Columns.LOSS_MASK], dtype=bool),
                                  self.config.model_config["max_seq_len"])
        inputs = {column: as_tensor(sequences.gather(np.asarray(batch[column]))).to(self.device)
                  for column in RECURRENT_STEP_INPUTS if column in batch}
        inputs[Columns.STATE_IN] = as_tensor(sequences.first(np.asarray(batch[Columns.STATE_IN]))).to(self.device)
        last = {column: as_tensor(np.asarray(batch[BOOTSTRAP_COLUMNS[column]])[:, None]).to(self.device)
                for column in RECURRENT_STEP_INPUTS if column in batch}
        last[Columns.STATE_IN] = as_tensor(np.asarray(batch[Columns.BOOTSTRAP_STATE_IN])).to(self.device)
        with torch.no_grad():
            values = sequences.scatter(module.compute_values(inputs).cpu().numpy())
            bootstrap = module.compute_values(last).cpu().numpy()[:, 0]
        return values, bootstrap

    # -- the update loop --------------------------------------------------------------

    def build(self) -> None:
        """Create the module(s), optimizers and the RNG used for minibatch shuffling."""
        config = self.config
        self._rank, self._world_size = distributed.world()
        # CNNs get the learner's CPUs as intra-op threads, MLPs one (LearnerConfig.learner_threads).
        torch.set_num_threads(config.learner_threads(any(is_image(obs) for obs, _ in self._module_spaces().values())))
        self.device = self._pick_device()
        # Initial weights from the config's seed alone, not from whatever this process drew before:
        # a learner actor then starts where the local learner would (Ray mode reproduces embedded mode).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            spec = config.get_rl_module_spec()
            modules = {mid: spec.build(obs, act) for mid, (obs, act) in self._module_spaces().items()}
        self._module = MultiRLModule(modules).to(self.device)
        if self._world_size > 1:
            distributed.broadcast_parameters(self._module)
        self._built = True  # the optimizer hook below already uses `self.module`
        self._optimizers = {mid: _named(self.configure_optimizers_for_module(mid, config)) for mid in self._module}
        # The config's learning rates, which a restored optimizer state must not override (see set_state).
        self._config_lrs = {mid: {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()}
                            for mid, optimizers in self._optimizers.items()}
        self._lr_schedule = PiecewiseSchedule(config.lr_schedule) if config.lr_schedule else None
        self._generator = torch.Generator().manual_seed(config.seed)
        # Metrics logged outside `update()` (e.g. calling the loss by hand) land here and are dropped.
        self._minibatch_metrics: list[TensorDict] = [{}]
        # This rank's share of each minibatch's rows (1.0 outside a process group), beside its metrics, and
        # whether its gradient step was taken (a non-finite one is skipped; its metrics are left out of the means).
        self._minibatch_weights: list[float] = []
        self._minibatch_stepped: list[bool] = []
        self.learner_vars: dict[str, dict[str, float]] = {mid: {NUM_NON_FINITE_UPDATES: 0} for mid in self._module}
        self._non_finite_in_a_row = dict.fromkeys(self._module, 0)

    def _module_spaces(self) -> dict[str, tuple[gym.Space, gym.Space]]:
        """Module id -> (observation, action) space: a multi-agent run's spaces are Dicts keyed by module id."""
        if self.config.is_multi_agent:
            return {mid: (self.observation_space[mid], self.action_space[mid]) for mid in self.observation_space}
        return {DEFAULT_MODULE_ID: (self.observation_space, self.action_space)}

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
        # Modules outside `multi_agent.policies_to_train` act but are not updated.
        results = {mid: self._update_module(mid, self.build_train_batch(mid, b)) for mid, b in per_module.items()
                    if self.config.is_trained(mid)}
        # Hooks after the update read this update's metrics (e.g. PPO's mean KL).
        self.last_update_results = results
        self.after_gradient_based_update(timesteps=timesteps)
        for mid, result in results.items():
            result.update(self.learner_vars[mid])
        return results

    def _is_multi_module_batch(self, batch: Mapping[str, Any]) -> bool:
        return all(isinstance(v, Mapping) for v in batch.values()) and set(batch) <= set(self._module)

    def steps_per_row(self, module_id: str, rows: TensorDict) -> torch.Tensor | None:
        """The env steps each row of `build_train_batch`'s output holds (`[rows]`), or None when a row is one step.

        A recurrent module's rows are whole sequences, holding their trained steps (IMPALA's are env columns):
        minibatches then take whole rows, as many minibatches as `minibatch_size` steps make, and DDP ranks'
        shares and `num_module_steps_trained` count steps.
        """
        return rows[Columns.LOSS_MASK].sum(dim=1).cpu() if self.trains_sequences(module_id) else None

    def minibatches(self, num_rows: int, num_minibatches: int | None = None) -> tuple[torch.Tensor, ...]:
        """One epoch's minibatches: a shuffle of all rows cut into `num_minibatches` (default
        `ceil(rows / minibatch_size)`) near-equal parts.

        Every row trains once per epoch (none is dropped), and every
        data-parallel rank draws the same permutation from the same generator,
        so together the ranks train on exactly the local learner's minibatches.
        """
        perm = torch.randperm(num_rows, generator=self._generator)
        return torch.tensor_split(perm, num_minibatches or max(1, math.ceil(num_rows / self.config.minibatch_size)))

    def minibatch_shares(self, num_rows: int, steps: torch.Tensor | None = None,
                         ) -> Iterator[tuple[torch.Tensor, float, int]]:
        """One epoch as (this rank's row indices, its share of the minibatch's steps, the minibatch's steps).

        Every rank holds the whole batch and trains on its slice of each minibatch. The shares of all
        ranks sum to 1: they weigh the gradient average and the metrics. A row is one step, or
        `steps[row]` of them (`steps_per_row`).
        """
        if steps is None:
            parts, steps_of = None, len
        else:
            parts = max(1, math.ceil(int(steps.sum()) / self.config.minibatch_size))
            def steps_of(rows: torch.Tensor) -> int:
                return int(steps[rows].sum())
        for indices in self.minibatches(num_rows, parts):
            own = distributed.rank_rows(indices, self._rank, self._world_size) if self._world_size > 1 else indices
            minibatch_steps = steps_of(indices)
            yield own, steps_of(own) / minibatch_steps, minibatch_steps

    def _update_module(self, module_id: str, rows: TensorDict) -> dict[str, float]:
        optimizers = self._optimizers[module_id]
        params = {name: [p for group in opt.param_groups for p in group["params"]] for name, opt in optimizers.items()}
        all_params = [p for ps in params.values() for p in ps]
        num_rows = len(next(iter(rows.values())))
        # Sequences (a recurrent module): the loss reads the steps that train, flattened after the forward pass.
        sequences = self.trains_sequences(module_id)
        steps = self.steps_per_row(module_id, rows)
        clip = self.config.grad_clip if self.config.grad_clip else math.inf
        self._minibatch_metrics = []
        self._minibatch_weights = []
        self._minibatch_stepped = []
        rows_trained = 0
        for _ in range(self.config.num_epochs):
            for own, weight, minibatch_rows in self.minibatch_shares(num_rows, steps):
                minibatch = {k: v[own.to(self.device)] for k, v in rows.items()}
                self._minibatch_metrics.append({})
                self._minibatch_weights.append(weight)
                fwd_out = self._module[module_id].forward_train(minibatch)
                if sequences:
                    mask = minibatch[Columns.LOSS_MASK]
                    minibatch, fwd_out = trained_steps(minibatch, mask), trained_steps(fwd_out, mask)
                loss = self.compute_loss_for_module(
                    module_id=module_id, config=self.config, batch=minibatch, fwd_out=fwd_out
                )
                for optimizer in optimizers.values():
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self._world_size > 1:
                    distributed.average_gradients(all_params, weight)
                norms = {f"gradients_{name}_global_norm": torch.nn.utils.clip_grad_norm_(params[name], clip)
                         for name in optimizers}
                self.log_metrics(total_loss=loss.detach(), **norms)
                stepped = self._is_finite(module_id, loss, norms)
                self._minibatch_stepped.append(stepped)
                if stepped:
                    for optimizer in optimizers.values():
                        optimizer.step()
                    self.after_gradient_step(module_id=module_id)
                    rows_trained += minibatch_rows
        metrics = self._mean_minibatch_metrics()
        for name, optimizer in optimizers.items():
            metrics[f"{name}_learning_rate"] = optimizer.param_groups[0]["lr"]
        # Row visits over all epochs and all ranks, as RLlib counts them; each epoch visits every row once.
        metrics["num_module_steps_trained"] = rows_trained
        return metrics

    def _is_finite(self, module_id: str, loss: torch.Tensor, norms: Mapping[str, torch.Tensor]) -> bool:
        """Whether this gradient step's loss and gradients are finite; a step that is not is skipped and counted.

        DDP ranks decide together (a loss that is non-finite on one rank only skips the step on all), so they
        stay identical. `max_non_finite_updates` skipped steps in a row raise NonFiniteUpdateError naming the
        first non-finite term the loss logged (else the total loss, else a gradient norm).
        """
        finite = torch.stack([loss.detach(), *norms.values()]).isfinite().all()
        if self._world_size > 1:
            finite = distributed.all_reduce_sum((~finite).float()) == 0
        if bool(finite):
            self._non_finite_in_a_row[module_id] = 0
            return True
        self.learner_vars[module_id][NUM_NON_FINITE_UPDATES] += 1
        self._non_finite_in_a_row[module_id] += 1
        in_a_row, limit = self._non_finite_in_a_row[module_id], self.config.max_non_finite_updates
        if in_a_row >= limit:
            term, value = next(((k, v) for k, v in self._minibatch_metrics[-1].items() if not v.isfinite()),
                               ("the loss on another DDP rank", torch.tensor(math.nan)))
            raise NonFiniteUpdateError(f"module '{module_id}': {in_a_row} gradient steps in a row were non-finite "
                                       f"({term} = {float(value)}; learners.max_non_finite_updates={limit}); each "
                                       "was skipped, so the weights are those of the last finite step")
        return False

    def _mean_minibatch_metrics(self) -> dict[str, float]:
        """Means over the minibatches whose gradient step was taken (each weighted over the ranks by its rows),
        fetched in one transfer.

        Every rank reports the same numbers, the ones a local learner would
        report for the same minibatches (exactly so for per-row means). A metric that only some minibatches
        log (TD3's policy loss, on its delayed policy steps) is the mean over those. If every step was skipped
        (non-finite), the means are NaN: there is no finite update to report.
        """
        keys = list(dict.fromkeys(k for m in self._minibatch_metrics for k in m))
        stepped = torch.tensor(self._minibatch_stepped, device=self.device)
        weights = torch.tensor(self._minibatch_weights, device=self.device) * stepped
        zero = torch.zeros((), device=self.device)
        logged = torch.tensor([[k in m for m in self._minibatch_metrics] for k in keys], device=self.device) & stepped
        per_minibatch = torch.stack([torch.stack([m.get(k, zero) for m in self._minibatch_metrics]) for k in keys])
        means = torch.where(logged, per_minibatch, zero).mul(weights).sum(dim=1) / logged.sum(dim=1)
        if self._world_size > 1:
            means = distributed.all_reduce_sum(means)
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
        wanted = state_components(components)
        state: dict[str, Any] = {}
        if COMPONENT_RL_MODULE in wanted:
            state[COMPONENT_RL_MODULE] = self._module.get_state()
        if COMPONENT_OPTIMIZER in wanted:
            state[COMPONENT_OPTIMIZER] = {
                mid: {name: _to_cpu(opt.state_dict()) for name, opt in optimizers.items()}
                for mid, optimizers in self._optimizers.items()
            }
        if COMPONENT_LEARNER_VARS in wanted:
            state[COMPONENT_LEARNER_VARS] = {mid: dict(v) for mid, v in self.learner_vars.items()}
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Apply whichever components `state` holds; the others stay untouched."""
        self._check_built()
        if COMPONENT_RL_MODULE in state:
            self._module.set_state(state[COMPONENT_RL_MODULE])
        for mid, opt_states in state.get(COMPONENT_OPTIMIZER, {}).items():
            for name, opt_state in _by_optimizer_name(opt_states).items():
                optimizer = self._optimizers[mid][name]
                optimizer.load_state_dict(opt_state)
                # The moments continue, at this learner's configured rate: a resumed run has the same one, and a
                # Tune PBT trial that continues another trial's checkpoint has its own, perturbed, rate.
                for group, lr in zip(optimizer.param_groups, self._config_lrs[mid][name]):
                    group["lr"] = lr
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


def trained_steps(sequences: TensorDict, mask: torch.Tensor) -> TensorDict:
    """`[N, L, ...]` sequence columns as the `[M, ...]` rows of the steps that train (`mask`, `[N, L]`), so a
    loss written for rows reads sequences unchanged."""
    return {k: v[mask] for k, v in sequences.items() if k not in (Columns.LOSS_MASK, Columns.STATE_IN)}


def save_learner_checkpoint(path: str | Path, state: Mapping[str, Any], rng: torch.Tensor) -> Path:
    """Atomically write a learner's full state (as `get_state()` returns it) and its shuffling RNG.

    Weights that are not all finite are refused before anything is written: a checkpoint never holds them (the
    learner skips non-finite steps, so this only trips on a module changed by other means).
    """
    for mid, weights in state[COMPONENT_RL_MODULE].items():
        bad = next((name for name, w in weights.items() if not np.isfinite(w).all()), None)
        if bad is not None:  # a write error: an algorithm checkpoint around this one names itself, not this part
            raise ckpt.CheckpointWriteError(Path(path), f"weight '{bad}' of module '{mid}' is not finite")
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


def _named(
    optimizers: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
) -> dict[str, torch.optim.Optimizer]:
    """The optimizers of one module by name; a single optimizer is `default_optimizer` (RLlib's name)."""
    if isinstance(optimizers, torch.optim.Optimizer):
        return {DEFAULT_OPTIMIZER: optimizers}
    return dict(optimizers)


def _by_optimizer_name(opt_states: Mapping[str, Any]) -> Mapping[str, Any]:
    """One module's optimizer states by name; checkpoints written before optimizers had names hold one bare state."""
    return {DEFAULT_OPTIMIZER: opt_states} if "param_groups" in opt_states else opt_states


def state_components(components: str | Sequence[str] | None) -> tuple[str, ...]:
    """The state components `get_state(components)` names (None: all); ValueError for an unknown one."""
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

"""`rlrun.load(path)`: a trained policy that acts on observations, for deployment (SB3's `PPO.load(...).predict`,
RLlib's `RLModule.from_checkpoint`).

A `Policy` is built as `rlrun-eval` builds its runner's module, without the runner and without the env: the
run's saved config in embedded mode (no Ray, no GPU) gives the module spec, the checkpoint the modules' spaces
(`spaces.json`; a format-2 checkpoint predates it, and the run's env gives them), their weights
(`load_module_weights`) and, if the run normalised observations, the frozen MeanStdFilter statistics.
Observations go through what the env runner does to them before a forward pass: structured ones (Dict, Tuple,
Discrete, ...) are packed into their PackedSpace row, floats become float32, the filter applies; Box actions are
clipped to the bounds.

A recurrent policy (`model.use_lstm`) carries its state from call to call, as the env runners do, one per row
of the batch it acts on: `compute_action` is one env's next step, `compute_actions` a vector env's, and
`episode_start` (SB3's name) or `reset()` starts episodes afresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrun.algorithms.algorithm import load_env_runner_state, load_module_weights, read_checkpoint_spaces
from rlrun.algorithms.algorithm_config import AlgorithmConfig, single_spaces
from rlrun.core.checkpointing import CheckpointError
from rlrun.core.columns import DEFAULT_MODULE_ID, Columns
from rlrun.core.packed_space import as_model_input
from rlrun.core.rl_module.memory import Memory
from rlrun.core.rl_module.rl_module import RLModule
from rlrun.env.env_runner import buffer_dtype
from rlrun.env.env_runner_group import normalization_in_state, spaces_env
from rlrun.env.normalization import Normalizer
from rlrun.run.checkpoints import locate
from rlrun.run.evaluation import default_checkpoint, embedded_config


class Policy:
    """The modules of one checkpoint, acting greedily (`explore=False`) or as in training (`explore=True`).

    Single-agent checkpoints hold one module; a multi-agent one holds one per policy id (`module_ids`), and each
    call names the module it asks (`module_id=`).
    """

    def __init__(self, modules: dict[str, RLModule], normalizer: Normalizer | None, checkpoint: Path,
                 seed: int = 0) -> None:
        self.modules = modules
        self.normalizer = normalizer
        self.checkpoint = checkpoint
        self._generator = torch.Generator().manual_seed(seed)
        # A recurrent module's memory per row of the batch it last acted on, by module id.
        self._memories: dict[str, Memory] = {}

    @property
    def module_ids(self) -> list[str]:
        return list(self.modules)

    def compute_action(self, obs: Any, explore: bool = False, module_id: str | None = None,
                       episode_start: bool = False, reward: float | None = None) -> Any:
        """The action for one observation (a scalar for Discrete actions, an array for the others). `reward` is
        what the previous action earned, for a model that reads it (`model.lstm_use_prev_reward`)."""
        module_id = self._module_id(module_id)
        row = as_model_input(self.modules[module_id].observation_space, obs)[None]
        return self._act(module_id, row, explore, np.array([episode_start]),
                         None if reward is None else np.array([reward], np.float32))[0]

    def compute_actions(self, obs_batch: Any, explore: bool = False, module_id: str | None = None,
                        episode_start: Any = None, rewards: Any = None) -> np.ndarray:
        """Actions `[N, ...]` for a batch of observations: an array `[N, *shape]`, or for a structured space its
        structure with a leading `N` on every part (as gymnasium's vector envs return it). `episode_start`
        (`[N]` bool) marks the rows whose episode starts with this observation (a recurrent policy's memory);
        `rewards` (`[N]`) are what each row's previous action earned, for a model that reads them."""
        module_id = self._module_id(module_id)
        rows = as_model_input(self.modules[module_id].observation_space, obs_batch)
        return self._act(module_id, rows, explore, None if episode_start is None else np.asarray(episode_start, bool),
                         None if rewards is None else np.asarray(rewards, np.float32))

    def reset(self) -> None:
        """Start every episode afresh: a recurrent policy forgets its memory (a stateless one has none)."""
        self._memories.clear()

    def _memory(self, module_id: str, rows: int, episode_start: np.ndarray | None,
                rewards: np.ndarray | None) -> Memory:
        """The memory `rows` observations continue from: the carried one with the previous step's rewards, fresh
        where an episode starts (and everywhere when the batch is new or of another size)."""
        memory = self._memories.get(module_id)
        if memory is None or len(memory) != rows:
            memory = self._memories[module_id] = Memory(self.modules[module_id], rows)
            return memory
        if Columns.PREV_REWARDS in memory.previous:
            if rewards is None and (episode_start is None or not episode_start.all()):
                raise ValueError("this policy's model reads the previous reward (model.lstm_use_prev_reward): pass "
                                 "what the previous action earned, reward= (compute_action) or rewards= "
                                 "(compute_actions)")
            if rewards is not None:
                memory.previous[Columns.PREV_REWARDS] = (rewards if self.normalizer is None
                                                         else self.normalizer.scaled_rewards(rewards))
        if episode_start is not None:
            memory.reset(episode_start)
        return memory

    def _module_id(self, module_id: str | None) -> str:
        if module_id is None:
            if len(self.modules) > 1:
                raise ValueError(f"this checkpoint has several modules, {self.module_ids}: pass module_id=")
            module_id = self.module_ids[0]
        if module_id not in self.modules:
            raise ValueError(f"unknown module_id {module_id!r}; this checkpoint has {self.module_ids}")
        return module_id

    def _act(self, module_id: str, obs: np.ndarray, explore: bool, episode_start: np.ndarray | None,
             rewards: np.ndarray | None = None) -> np.ndarray:
        module = self.modules[module_id]
        obs = obs.astype(buffer_dtype(module.observation_space), copy=False)
        if self.normalizer is not None:
            obs = self.normalizer.observations(obs, update=False)
        forward = module.forward_exploration if explore else module.forward_inference
        dist_cls = module.get_exploration_action_dist_cls() if explore else module.get_inference_action_dist_cls()
        inputs = {Columns.OBS: torch.from_numpy(np.ascontiguousarray(obs))}
        memory = self._memory(module_id, len(obs), episode_start, rewards) if module.is_stateful() else None
        if memory is not None:
            inputs.update(memory.inputs())
        with torch.inference_mode():
            out = forward(inputs)
            dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
            actions = (dist.sample(self._generator) if explore else dist.deterministic_sample()).numpy()
        if memory is not None:  # this step's reward comes with the next call
            memory.step(out[Columns.STATE_OUT].numpy(), actions, memory.previous.get(Columns.PREV_REWARDS))
        space = module.action_space
        if isinstance(space, gym.spaces.Box):
            return np.clip(actions, space.low, space.high)
        return actions.astype(space.dtype, copy=False)


def load(path: str | Path, seed: int = 0) -> Policy:
    """The policy of a run directory (its best checkpoint, else its latest) or of any checkpoint directory.

    `seed` seeds the sampling of `explore=True` actions. Neither Ray nor the env is needed: the checkpoint holds
    the modules' spaces beside their weights (but for a format-2 checkpoint, whose run's env is built once to
    read them, never stepped).
    """
    run_dir, checkpoint = locate(Path(path))
    checkpoint = checkpoint or default_checkpoint(run_dir)
    config = embedded_config(run_dir, None)
    module_spec = config.get_rl_module_spec()
    weights = load_module_weights(checkpoint)
    modules = {}
    for module_id, (obs_space, act_space) in module_spaces(checkpoint, config).items():
        module = module_spec.build(obs_space, act_space)
        module.set_state(weights[module_id])
        modules[module_id] = module.eval()
    normalizer = None
    stats = normalization_in_state(load_env_runner_state(checkpoint))
    if stats is not None and list(modules) == [DEFAULT_MODULE_ID]:  # multi-agent runs do not normalise
        normalizer = Normalizer(config.normalization_spec(), modules[DEFAULT_MODULE_ID].observation_space, 1)
        normalizer.sync(stats)
    return Policy(modules, normalizer, checkpoint, seed)


def module_spaces(checkpoint: Path, config: AlgorithmConfig) -> dict[str, tuple[gym.Space, gym.Space]]:
    """(observation, action) space of each module id, as the checkpoint saved them (a format-2 one: as the run's
    env has them): a multi-agent run's are Dicts by module id, a single-agent observation space is a Box (a
    structured one packed)."""
    obs_space, act_space = read_checkpoint_spaces(checkpoint) or env_spaces_of_run(checkpoint, config)
    if isinstance(obs_space, gym.spaces.Dict):
        return {module_id: (obs_space[module_id], act_space[module_id]) for module_id in obs_space.spaces}
    return {DEFAULT_MODULE_ID: (obs_space, act_space)}


def env_spaces_of_run(checkpoint: Path, config: AlgorithmConfig) -> tuple[gym.Space, gym.Space]:
    """The spaces of a format-2 checkpoint's modules, from the env its run's config names, as its runners saw
    them; CheckpointError in one line if that env cannot be built here (not installed, renamed, failing)."""
    try:
        env = spaces_env(config.env_runner_spec())
    except Exception as e:  # the user's env, its package or its env_config: whatever it raises, one line
        reason = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"{checkpoint} is a format-2 checkpoint, which does not hold its modules' spaces, and "
                              f"the env of its run ('{config.env}') cannot be built to read them: "
                              f"{type(e).__name__}: {reason}") from None
    try:
        return single_spaces(env)
    finally:
        if isinstance(env, gym.Env):
            env.close()

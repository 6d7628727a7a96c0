"""`env.backend=envpool`: envpool's C++ env pool behind the vector-env interface the env runners use.

envpool (the `envpool` extra) steps many copies of an Atari or MuJoCo env in C++ threads. It already
autoresets as rlrun needs (gymnasium's NEXT_STEP): the step that ends an episode returns that episode's
final observation, and the next step of that copy only resets it (reward 0, its action ignored).

The same `env.atari.*` keys mean the same things here as with gymnasium's wrappers: they map onto envpool's
own options (`envpool_kwargs`). Life loss and reward clipping stay off in envpool (`episodic_life=False`,
`reward_clip=False`) because the env runner derives them for training while the env plays whole games.

envpool takes its seed when it is built (copy j gets seed + j, as gymnasium's vector envs do) and cannot be
reseeded, so `reset(seed=...)` restarts the episodes without reseeding. Its state cannot be read out either:
a run resumed from a checkpoint starts fresh episodes (rlrun/env/env_state.py finds no plain data here).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from rlrun.env.atari import envpool_atari_task
from rlrun.env.env_spec import EnvError, EnvSpec
from rlrun.extras import install_hint

# What envpool's Atari pool does by default that gymnasium's ALE v5 ids also do: truncate after 108,000 frames.
ATARI_MAX_FRAMES = 108_000


def envpool_installed() -> bool:
    return importlib.util.find_spec("envpool") is not None


def envpool_task(spec: EnvSpec, env_id: str) -> str:
    """envpool's task id for the resolved gymnasium `env_id`, or EnvError saying why envpool cannot run it."""
    from rlrun.env.atari import is_ale_id

    if not envpool_installed():
        raise EnvError(f"env.backend=envpool needs the package envpool, which is not installed; "
                       f"{install_hint('envpool')}")
    import envpool

    if is_ale_id(env_id):
        if spec.atari is None:
            raise EnvError(f"env.backend=envpool plays Atari only with its preprocessing; set env.atari (env=atari) "
                           f"for '{env_id}', or use env.backend=sync for raw frames")
        task = envpool_atari_task(env_id)
    else:
        entry_point = gym.spec(env_id).entry_point if env_id in gym.registry else None
        if not (isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.mujoco")):
            raise EnvError(f"env.backend=envpool runs Atari (ALE/<Game>-v5) and MuJoCo (Hopper-v5, ...) envs; "
                           f"'{spec.id}' is neither: use env.backend=sync or async")
        task = env_id
    if task not in envpool.list_all_envs():
        raise EnvError(f"env.backend=envpool: envpool {envpool.__version__} has no env '{task}' (for '{spec.id}'); "
                       "use env.backend=sync or async")
    return task


def envpool_kwargs(spec: EnvSpec) -> dict[str, Any]:
    """envpool.make's options for the spec: the `env.atari.*` keys under envpool's names, then env.env_config."""
    kwargs: dict[str, Any] = {}
    atari = spec.atari
    if atari is not None:
        kwargs.update(
            noop_max=atari.noop_max, frame_skip=atari.frame_skip, img_height=atari.screen_size,
            img_width=atari.screen_size, gray_scale=atari.grayscale, stack_num=atari.frame_stack,
            episodic_life=False, reward_clip=False, use_fire_reset=atari.fire_reset,
            repeat_action_probability=atari.repeat_action_probability,
            max_episode_steps=spec.max_episode_steps or ATARI_MAX_FRAMES // atari.frame_skip,
        )
    elif spec.max_episode_steps is not None:
        kwargs["max_episode_steps"] = spec.max_episode_steps
    return {**kwargs, **spec.env_config}


class EnvpoolVectorEnv(gym.vector.VectorEnv):
    """An envpool pool with the spaces, autoreset mode and reset signature of gymnasium's vector envs.

    A Box action space is float32 here, as gymnasium's MuJoCo envs declare it (envpool says float64); actions
    are converted on the way in.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, spec: EnvSpec, env_id: str, num_envs: int, seed: int | None) -> None:
        import envpool

        self._pool = envpool.make(envpool_task(spec, env_id), env_type="gymnasium", num_envs=num_envs,
                                  seed=0 if seed is None else seed, **envpool_kwargs(spec))
        self.num_envs = num_envs
        self.single_observation_space = self._pool.single_observation_space
        action_space = self._pool.single_action_space
        self._action_dtype = action_space.dtype
        if isinstance(action_space, gym.spaces.Box) and action_space.dtype == np.float64:
            action_space = gym.spaces.Box(action_space.low.astype(np.float32), action_space.high.astype(np.float32),
                                          action_space.shape, np.float32)
        self.single_action_space = action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.closed = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Restart every copy's episode (envpool was seeded when it was built; `seed` is not used)."""
        return self._pool.reset()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rewards, terminated, truncated, info = self._pool.step(np.asarray(actions, dtype=self._action_dtype))
        return obs, rewards, terminated.astype(bool), truncated.astype(bool), info

    def close(self, **kwargs: Any) -> None:
        if not self.closed:
            self.closed = True
            self._pool.close()

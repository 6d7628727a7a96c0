"""rl-zoo3's tuned hyperparameters as Stable-Baselines3 constructor arguments, read from the installed rl_zoo3 package.

Runs in the bench venv (.venv-bench) beside the SB3 reference scripts. Reading
the package's own `hyperparams/<algo>.yml` (rather than copying numbers) keeps
the reference exactly what `python -m rl_zoo3.train` would train. The two kinds
of values rl-zoo3 turns into objects are converted as its ExperimentManager
does: `lin_<x>` strings become linear schedules from x to 0, a `train_freq`
list a tuple, `policy_kwargs` strings are evaluated, and `noise_type: normal` with its
`noise_std` becomes the Gaussian action noise of TD3's entries (`action_noise`). `normalize: True`
becomes VecNormalize's keyword arguments (observations and rewards, with the
entry's gamma), for the script to wrap its envs in. Entries that need anything
more (env wrappers, callbacks) are refused: the SB3 scripts build plain
Monitor-wrapped envs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rl_zoo3.utils import linear_schedule
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

# rl-zoo3 keys this module does not convert (env set-up, callbacks, buffer classes); the benchmarks' entries have none.
UNSUPPORTED_KEYS = ("env_wrapper", "vec_env_wrapper", "frame_stack", "monitor_kwargs", "env_kwargs",
                    "callback", "replay_buffer_class", "replay_buffer_kwargs")


@dataclass(frozen=True)
class ZooSetup:
    """One rl-zoo3 entry: the policy name, how many envs, its training budget, the remaining model kwargs and,
    where the entry normalizes, VecNormalize's kwargs (None where it does not)."""

    policy: str
    n_envs: int
    n_timesteps: int
    kwargs: dict[str, Any]
    normalize: dict[str, Any] | None = None
    noise_std: float | None = None  # `noise_type: normal`: the std of Gaussian action noise


def zoo_setup(algo: str, env_id: str) -> ZooSetup:
    """rl-zoo3's entry for `env_id` in the installed package's hyperparams/<algo>.yml."""
    spec = importlib.util.find_spec("rl_zoo3")
    assert spec is not None and spec.submodule_search_locations, "rl_zoo3 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "hyperparams" / f"{algo}.yml"
    hp = dict(yaml.safe_load(path.read_text())[env_id])
    unsupported = sorted(set(UNSUPPORTED_KEYS) & hp.keys())
    if unsupported:
        raise SystemExit(f"{path} [{env_id}] sets {unsupported}, which this reference script does not convert")
    policy, n_envs, n_timesteps = hp.pop("policy"), int(hp.pop("n_envs", 1)), int(hp.pop("n_timesteps"))
    noise_type, noise_std = hp.pop("noise_type", None), hp.pop("noise_std", None)
    if noise_type not in (None, "normal"):
        raise SystemExit(f"{path} [{env_id}] sets noise_type={noise_type!r}; this script converts only 'normal'")
    normalize = hp.pop("normalize", False)
    if normalize not in (True, False):  # a dict or a string of one: not in the entries the benchmarks read
        raise SystemExit(f"{path} [{env_id}] sets normalize={normalize!r}; this script converts only True/False")
    # rl-zoo3 discounts VecNormalize's running return with the entry's own gamma (ExperimentManager).
    normalize_kwargs = ({"gamma": hp["gamma"]} if "gamma" in hp else {}) if normalize else None
    for key, value in hp.items():
        if isinstance(value, str) and value.startswith("lin_"):
            hp[key] = linear_schedule(value.removeprefix("lin_"))
    if isinstance(hp.get("train_freq"), list):  # [n, "episode"]
        hp["train_freq"] = tuple(hp["train_freq"])
    if isinstance(hp.get("policy_kwargs"), str):  # e.g. "dict(net_arch=[256, 256])", evaluated as rl-zoo3 does
        hp["policy_kwargs"] = eval(hp["policy_kwargs"], {"dict": dict, "nn": nn})
    return ZooSetup(policy=policy, n_envs=n_envs, n_timesteps=n_timesteps, kwargs=hp, normalize=normalize_kwargs,
                    noise_std=None if noise_type is None else float(noise_std))


def action_noise(zoo: ZooSetup, env: VecEnv) -> dict[str, Any]:
    """The model's `action_noise` keyword as rl-zoo3's ExperimentManager builds it (none where the entry has none)."""
    if zoo.noise_std is None:
        return {}
    n_actions = env.action_space.shape[0]
    return {"action_noise": NormalActionNoise(mean=np.zeros(n_actions), sigma=zoo.noise_std * np.ones(n_actions))}


def training_env(zoo: ZooSetup, env_id: str, seed: int) -> VecEnv:
    """The entry's training envs as rl-zoo3 builds them: Monitor-wrapped copies in a DummyVecEnv, under VecNormalize
    where the entry normalizes (Monitor sits inside it, so reported episode returns stay unnormalized)."""
    env = make_vec_env(env_id, n_envs=zoo.n_envs, seed=seed)
    return VecNormalize(env, **zoo.normalize) if zoo.normalize is not None else env

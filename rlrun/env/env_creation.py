"""Turn an env name from the config into a gymnasium vector env.

An env is a registered gymnasium id (`CartPole-v1`), gymnasium's `module:EnvId`
(`ale_py:ALE/Pong-v5`: import the module, which registers the id, then make it)
or a user class given as `pkg.module:Class`. Ids that another package registers
(`ALE/...`, `MiniGrid-...`) import that package on first use, in whichever process
builds the env (Ray's env-runner actors too), so `env.id=ALE/Pong-v5` needs no
import of the user's own. On a machine with no display, resolution also picks an
off-screen OpenGL backend for MuJoCo (`use_headless_gl`) before any env module is
imported. Ids with one of gymnasium's own vectorized implementations (CartPole's
`vector_entry_point`) use it; everything else runs in a `SyncVectorEnv`. All
vector envs use gymnasium's NEXT_STEP autoreset, which the EnvRunner relies on
(see `Columns.LOSS_MASK`).
"""

from __future__ import annotations

import ctypes
import difflib
import functools
import importlib
import importlib.util
import logging
import os
import platform
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rlrun.extras import install_hint

log = logging.getLogger("rlrun")

# Gymnasium ids that another package registers when it is imported: (id prefix, module, rlrun's extra with it).
REGISTERING_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("ALE/", "ale_py", "atari"),
    ("MiniGrid-", "minigrid", "minigrid"),
    ("BabyAI-", "minigrid", "minigrid"),
)
# Ids that gymnasium registers itself but whose envs need another package: (entry point prefix, module, extra).
# gymnasium only says so from inside gym.make, as a traceback; checked here so that it is one line up front.
ENTRY_POINT_PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("gymnasium.envs.mujoco", "mujoco", "mujoco"),
    ("gymnasium.envs.box2d", "Box2D", "box2d"),
)
# Off-screen OpenGL backends that MuJoCo (and PyOpenGL) can use without a display, in order of preference,
# each with the shared libraries that provide it.
HEADLESS_GL_BACKENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("egl", ("libEGL.so.1", "libEGL.so")),
    ("osmesa", ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")),
)


class EnvError(ValueError):
    """An env name that cannot be resolved or built."""


def resolve_env(env_id: str) -> str | Callable[..., gym.Env]:
    """The registered gymnasium id that `env_id` names, or the user's env class of a `pkg.module:Class`.

    Whatever must be imported for the id to exist is imported here (gymnasium's `module:EnvId` form, a package
    from REGISTERING_PACKAGES), because every process that builds the env comes through here and each has its
    own registry. The id returned has no `module:` prefix, so `gym.spec` and `gym.make` take it as is.
    """
    use_headless_gl()  # before any env module is imported: MuJoCo reads MUJOCO_GL when it is imported
    module_name, sep, attr = env_id.partition(":")
    if env_id in gym.registry or not sep:
        _import_registering_package(env_id)
        _check_entry_point_package(env_id)
        return env_id
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        install = next((f"; {install_hint(extra)}" for _, name, extra in REGISTERING_PACKAGES
                        if name == module_name), "")
        raise EnvError(f"cannot import env module '{module_name}' of env '{env_id}': {e}{install}") from None
    if attr in gym.registry:  # gymnasium's module:EnvId, the module registered it
        _check_entry_point_package(attr)
        return attr
    env_cls = getattr(module, attr, None)
    if env_cls is None:
        raise EnvError(f"module '{module_name}' neither has an env class '{attr}' nor registers a gymnasium "
                       f"id '{attr}'")
    return env_cls


def _import_registering_package(env_id: str) -> None:
    """Import the package that registers `env_id` (ALE/..., MiniGrid-...); EnvError if the id stays unknown."""
    if env_id in gym.registry:
        return
    for prefix, module_name, extra in REGISTERING_PACKAGES:
        if env_id.startswith(prefix):
            try:
                importlib.import_module(module_name)
            except ImportError as e:
                raise EnvError(f"env '{env_id}' is registered by the package {module_name}, which cannot be "
                               f"imported ({e}); {install_hint(extra)}") from None
            break
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise EnvError(f"unknown env id '{env_id}'; {hint}use a registered gymnasium id such as CartPole-v1, "
                       "module:EnvId to import the module that registers it, or a user env as pkg.module:Class")


def _check_entry_point_package(env_id: str) -> None:
    """EnvError naming what to install when a registered id's env needs a package that is missing (MuJoCo, Box2D)."""
    entry_point = gym.spec(env_id).entry_point
    if not isinstance(entry_point, str):
        return
    for prefix, module_name, extra in ENTRY_POINT_PACKAGES:
        if entry_point.startswith(prefix) and not _installed(module_name):
            raise EnvError(f"env '{env_id}' needs the package {module_name}, which is not installed; "
                           f"{install_hint(extra)}")


def _installed(module_name: str) -> bool:
    """Whether `module_name` can be imported, without importing it (MuJoCo's import must wait for use_headless_gl)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules, i.e. blocked
        return False


@functools.cache
def use_headless_gl() -> str | None:
    """On a Linux machine with no display, choose an off-screen OpenGL backend for MuJoCo; returns it, or None.

    Without a display MuJoCo's default (GLFW) cannot create a context, and rendering ends in
    `mujoco.FatalError: an OpenGL platform library has not been loaded`. MuJoCo and PyOpenGL read MUJOCO_GL and
    PYOPENGL_PLATFORM when they are imported, so this runs before any env module is; child processes (Ray's env
    runners) inherit the choice. A user's own MUJOCO_GL is kept, and a PYOPENGL_PLATFORM alone picks that backend.
    Decided once per process: later calls return the first one's choice. None when the machine has a display,
    MUJOCO_GL was set before, or no backend can be loaded (`headless_gl_problem` then says so when rendering fails).
    """
    if platform.system() != "Linux" or os.environ.get("MUJOCO_GL") or has_display():
        return None
    wanted = os.environ.get("PYOPENGL_PLATFORM", "").lower()
    for backend, libraries in HEADLESS_GL_BACKENDS:
        if wanted in ("", backend) and any(_loadable(library) for library in libraries):
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            # Debug, not info: every run comes here, and a refused `resume=` must leave rlrun.log as it was.
            # rlrun-eval names the backend where it matters, on its video line.
            log.debug("no display: OpenGL rendering (MuJoCo) uses MUJOCO_GL=%s", backend)
            return backend
    return None


def headless_gl_problem() -> str | None:
    """Why OpenGL rendering fails on this machine as configured, in words naming the variable to set; None when
    there is a display (then a rendering error is the env's own)."""
    if platform.system() != "Linux" or has_display():
        return None
    # Without MUJOCO_GL, use_headless_gl found no loadable backend, or only one that PYOPENGL_PLATFORM ruled out.
    # (PYOPENGL_PLATFORM alone says little: MuJoCo's own fallback sets it while trying backends.)
    variable = "MUJOCO_GL" if os.environ.get("MUJOCO_GL") else "PYOPENGL_PLATFORM"
    loadable = any(_loadable(library) for _, libraries in HEADLESS_GL_BACKENDS for library in libraries)
    if variable == "MUJOCO_GL" or loadable:
        return (f"OpenGL rendering failed with {variable}={os.environ.get(variable)} and no display; set MUJOCO_GL "
                "to a backend this machine has (egl needs libEGL, osmesa needs libOSMesa, glfw needs a DISPLAY)")
    names = " nor ".join(libraries[0] for _, libraries in HEADLESS_GL_BACKENDS)
    return (f"this machine has no display and neither {names} can be loaded, so OpenGL envs (MuJoCo) cannot "
            "render; install one (e.g. apt-get install libegl1 or libosmesa6; rlrun then sets MUJOCO_GL itself), "
            "set MUJOCO_GL to a backend that works here, or set DISPLAY")


def has_display() -> bool:
    """Whether windows can be opened here (X11 or Wayland), i.e. on-screen OpenGL backends such as GLFW work."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _loadable(library: str) -> bool:
    """Whether the dynamic loader finds `library` (loading it is what PyOpenGL will do next anyway)."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def make_env(env_id: str, env_config: Mapping[str, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """One (non-vector) env instance, e.g. to read its spaces."""
    target = resolve_env(env_id)
    kwargs = dict(env_config or {})
    if isinstance(target, str):
        return gym.make(target, max_episode_steps=max_episode_steps, **kwargs)
    env = target(**kwargs)
    return env if max_episode_steps is None else gym.wrappers.TimeLimit(env, max_episode_steps)


def make_vector_env(
    env_id: str,
    num_envs: int,
    env_config: Mapping[str, Any] | None = None,
    max_episode_steps: int | None = None,
) -> gym.vector.VectorEnv:
    """`num_envs` copies of the env as one vector env with NEXT_STEP autoreset.

    Only gymnasium's own vector entry points are used: they vectorize the very env that `gym.make` builds. Other
    packages' are other envs (ALE's AtariVectorEnv preprocesses to 84x84 grey frame stacks and takes other
    kwargs), whose spaces would not be those that `make_env` reports to the learners.
    """
    target = resolve_env(env_id)
    kwargs = dict(env_config or {})
    vector_entry_point = gym.spec(target).vector_entry_point if isinstance(target, str) else None
    if isinstance(vector_entry_point, str) and vector_entry_point.startswith("gymnasium."):
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        env = gym.make_vec(target, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    else:
        env = gym.vector.SyncVectorEnv(
            [lambda: make_env(env_id, kwargs, max_episode_steps) for _ in range(num_envs)],
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise EnvError(f"env '{env_id}' vectorizes with autoreset mode {mode}; rlrun needs NEXT_STEP")
    return env


def env_spaces(env_id: str, env_config: Mapping[str, Any] | None = None) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one env, building it once to read them."""
    env = make_env(env_id, env_config)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()

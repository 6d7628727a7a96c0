"""Build the envs an `EnvSpec` describes: one env (`make_env`) or a vector env of copies (`make_vector_env`).

An env is a registered gymnasium id (`CartPole-v1`), gymnasium's `module:EnvId`
(`ale_py:ALE/Pong-v5`: import the module, which registers the id, then make it)
or a user class given as `pkg.module:Class`. Ids that another package registers
(`ALE/...`, `MiniGrid-...`) import that package on first use, in whichever process
builds the env (Ray's env-runner actors too), so `env.id=ALE/Pong-v5` needs no
import of the user's own. On a machine with no display, resolution also picks an
off-screen OpenGL backend for MuJoCo (`use_headless_gl`) before any env module is
imported.

Each copy is the env, then its Atari preprocessing (`env.atari`, rlrun/env/atari.py)
or TimeLimit, then the user's `env.wrappers` in order, then, for an observation space
that is no Box (Dict, Discrete, ...), packing into one uint8 row (rlrun/env/packing.py).
The backend vectorizes the copies: `sync` in this process (with gymnasium's own vector
implementation where an id has one, CartPole's and StatelessCartPole's `vector_entry_point`, and nothing is
wrapped), `async` one process per copy, `envpool` in envpool's C++ threads (rlrun/env/envpool_env.py).
All of them autoreset in gymnasium's NEXT_STEP mode, which the EnvRunner relies on
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
from collections.abc import Callable

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rlrun.env.atari import ale_kwargs, atari_env, is_ale_id, quiet_ale
from rlrun.env.env_spec import EnvError, EnvSpec, as_env_spec
from rlrun.env.packing import pack_observations
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
# rlrun's own envs (rlrun/env/stateless.py), registered as gymnasium registers its own: by id, their module
# imported only when one is made.
RLRUN_ENVS: dict[str, dict[str, object]] = {
    "StatelessCartPole-v1": {"entry_point": "rlrun.env.stateless:StatelessCartPoleEnv",
                             "vector_entry_point": "rlrun.env.stateless:StatelessCartPoleVectorEnv",
                             "max_episode_steps": 500, "reward_threshold": 475.0},
    "StatelessPendulum-v1": {"entry_point": "rlrun.env.stateless:StatelessPendulumEnv", "max_episode_steps": 200},
}
for _env_id, _registration in RLRUN_ENVS.items():
    if _env_id not in gym.registry:
        gym.register(_env_id, **_registration)
# Off-screen OpenGL backends that MuJoCo (and PyOpenGL) can use without a display, in order of preference,
# each with the shared libraries that provide it.
HEADLESS_GL_BACKENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("egl", ("libEGL.so.1", "libEGL.so")),
    ("osmesa", ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")),
)


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
        if is_ale_id(env_id):
            quiet_ale()
        return env_id
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        install = next((f"; {install_hint(extra)}" for _, name, extra in REGISTERING_PACKAGES
                        if name == module_name), "")
        raise EnvError(f"cannot import env module '{module_name}' of env '{env_id}': {e}{install}") from None
    if attr in gym.registry:  # gymnasium's module:EnvId, the module registered it
        _check_entry_point_package(attr)
        if is_ale_id(attr):
            quiet_ale()
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


def make_env(spec: EnvSpec | str) -> gym.Env:
    """One (non-vector) env as `spec` describes it: the env, its Atari preprocessing, TimeLimit and wrappers.

    Always a gymnasium env, whatever `spec.backend`: one copy to read spaces from, or to film.
    """
    spec = as_env_spec(spec)
    target = resolve_env(spec.id)
    kwargs = dict(spec.env_config)
    if spec.atari is not None:
        env_id = _ale_id(spec, target)
        env = atari_env(gym.make(env_id, **ale_kwargs(spec.atari, kwargs)), spec.atari, spec.max_episode_steps)
    elif isinstance(target, str):
        env = gym.make(target, max_episode_steps=spec.max_episode_steps, **kwargs)
    else:
        env = target(**kwargs)
        if spec.max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, spec.max_episode_steps)
    for wrapper in spec.wrappers:
        env = wrapper.resolve()(env, **wrapper.kwargs)
    return pack_observations(env)  # last: a Dict, Tuple, Discrete, ... observation leaves as one uint8 row


def make_vector_env(spec: EnvSpec | str, num_envs: int, *, seed: int | None = None) -> gym.vector.VectorEnv:
    """`num_envs` copies of the env as one vector env with NEXT_STEP autoreset, by `spec.backend`.

    `sync` steps the copies in this process: a `SyncVectorEnv` of `make_env`, or gymnasium's own vector entry
    point where the id has one and nothing is wrapped (CartPole's vectorizes the very env that `gym.make`
    builds; other packages' are other envs: ALE's AtariVectorEnv preprocesses on its own, with other kwargs).
    `async` runs each copy in a process of its own (`AsyncVectorEnv`), `envpool` in envpool's threads. `seed`
    is for envpool, which is seeded when it is built; gymnasium's vector envs are seeded by `reset(seed=...)`.
    """
    spec = as_env_spec(spec)
    target = resolve_env(spec.id)
    if spec.backend == "envpool":
        from rlrun.env.envpool_env import EnvpoolVectorEnv

        env: gym.vector.VectorEnv = EnvpoolVectorEnv(spec, _registered_id(spec, target), num_envs, seed)
    elif spec.backend == "async":
        env = gym.vector.AsyncVectorEnv([functools.partial(make_env, spec) for _ in range(num_envs)],
                                        autoreset_mode=AutoresetMode.NEXT_STEP)
    else:
        vector_entry_point = gym.spec(target).vector_entry_point if isinstance(target, str) else None
        plain = spec.atari is None and not spec.wrappers
        if plain and isinstance(vector_entry_point, str) and vector_entry_point.startswith(("gymnasium.", "rlrun.")):
            kwargs = dict(spec.env_config)
            if spec.max_episode_steps is not None:
                kwargs["max_episode_steps"] = spec.max_episode_steps
            env = gym.make_vec(target, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        else:
            env = gym.vector.SyncVectorEnv([functools.partial(make_env, spec) for _ in range(num_envs)],
                                           autoreset_mode=AutoresetMode.NEXT_STEP)
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        env.close()
        raise EnvError(f"env '{spec.id}' vectorizes with autoreset mode {mode}; rlrun needs NEXT_STEP")
    return env


def env_spaces(spec: EnvSpec | str) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one env, building it once to read them."""
    env = make_env(spec)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def check_env_spec(spec: EnvSpec) -> None:
    """EnvError naming the key, for what the spec asks that its env cannot do, before any env is built:
    Atari preprocessing of a non-ALE env, an env envpool does not run, a wrapper that is no wrapper class."""
    target = resolve_env(spec.id)
    if spec.atari is not None:
        _ale_id(spec, target)
        ale_kwargs(spec.atari, dict(spec.env_config))
        if spec.backend != "envpool" and not _installed("cv2"):
            raise EnvError(f"env.atari resizes frames with OpenCV (gymnasium's AtariPreprocessing), which is not "
                           f"installed; {install_hint('atari')}")
    if spec.backend == "envpool":
        from rlrun.env.envpool_env import envpool_task

        envpool_task(spec, _registered_id(spec, target))
    for i, wrapper in enumerate(spec.wrappers):
        wrapper.resolve(f"env.wrappers[{i}]")


def _registered_id(spec: EnvSpec, target: str | Callable[..., gym.Env]) -> str:
    """The resolved id of an env envpool is to run; EnvError for a user's env class, which envpool cannot."""
    if not isinstance(target, str):
        raise EnvError(f"env.backend=envpool runs registered Atari and MuJoCo ids, not a class ('{spec.id}')")
    return target


def _ale_id(spec: EnvSpec, target: str | Callable[..., gym.Env]) -> str:
    """The resolved id of an env that env.atari preprocesses; EnvError if it is no ALE env."""
    if not (isinstance(target, str) and is_ale_id(target)):
        raise EnvError(f"env.atari preprocesses Atari games (ALE ids such as ALE/Pong-v5); '{spec.id}' is not one: "
                       "set env.atari=null or an ALE env.id")
    return target

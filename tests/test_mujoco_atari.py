"""MuJoCo and ALE envs through the CLI (issue 23, items 5 and 6).

Item 5: `rlrun-eval ... video=true` on Hopper-v5 without a display ended in `mujoco.FatalError: an OpenGL
platform library has not been loaded`. Now rlrun picks an off-screen backend (EGL, else OSMesa) when the
machine has no display, or ends in one line that names MUJOCO_GL. The tests install no system library:
which outcome is right depends on whether this machine can load libEGL or libOSMesa, checked here with
ctypes independently of rlrun's own probe.

Item 6: a run whose env sat in a reference cycle holding ALE's native handle ended with `nanobind: leaked
...` lines, because `main()` froze the garbage collector with the env still uncollected. `CyclicPong` below
is such an env (a reference cycle, as many user envs and wrappers have).
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
from pathlib import Path

import pytest
from ale_py.env import AtariEnv
from conftest import RLRUN, pythonpath_with_tests

from rlrun.cli import EXIT_USAGE

# One worker runs the module: its tests share a module fixture (a run or sweep), made once per worker.
pytestmark = pytest.mark.xdist_group("mujoco_atari")

RLRUN_EVAL = str(Path(RLRUN).with_name("rlrun-eval"))
HEADLESS = {"DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL", "PYOPENGL_PLATFORM", "RLRUN_DEBUG"}
SHORT_RUN = ["stop.iterations=1", "algo.train_batch_size=256", "algo.minibatch_size=64",
             "env_runners.num_envs_per_runner=2", "evaluation.episodes=1", "logger.console=plain"]


class CyclicPong(AtariEnv):
    """Pong with RAM observations whose instances are in a reference cycle: only a collection frees them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(game="pong", obs_type="ram", **kwargs)
        self.me = self


def _headless_env(**extra: str) -> dict[str, str]:
    """This process's environment as on a machine with no display (and no OpenGL choice of the user's)."""
    return {k: v for k, v in os.environ.items() if k not in HEADLESS} | extra


@pytest.fixture(scope="module")
def hopper_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-iteration Hopper-v5 run, trained without a display; its stderr has no nanobind leak report."""
    tmp = tmp_path_factory.mktemp("hopper")
    # Small frames and short episodes: software OpenGL (Mesa's llvmpipe) renders 480x480 at a few frames a second.
    proc = subprocess.run([RLRUN, "env.id=Hopper-v5", "algo=ppo", "env.max_episode_steps=20",
                           "++env.env_config={width: 64, height: 64}", *SHORT_RUN, f"hydra.run.dir={tmp / 'run'}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp, env=_headless_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nanobind: leaked" not in proc.stderr, proc.stderr
    return tmp / "run"


def test_video_of_a_mujoco_env_without_display(hopper_run: Path) -> None:
    proc = subprocess.run([RLRUN_EVAL, f"checkpoint={hopper_run}", "video=true", "episodes=1"],
                          capture_output=True, text=True, timeout=300, cwd=hopper_run, env=_headless_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    backend = next((name for name, lib in (("egl", "EGL"), ("osmesa", "OSMesa")) if ctypes.util.find_library(lib)),
                   None)
    if backend is None:  # nothing to render with: one line that says what to set
        assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("rlrun-eval: error: cannot film env 'Hopper-v5'"), lines
        assert "MUJOCO_GL" in lines[0] and "no display" in lines[0], lines[0]
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"rendered off-screen with MUJOCO_GL={backend}: this machine has no display" in proc.stdout, proc.stdout
    videos = list((hopper_run / "videos").iterdir())
    assert len(videos) == 1 and videos[0].stat().st_size > 0, videos


def test_opengl_backend_that_cannot_work_is_one_line(hopper_run: Path) -> None:
    """GLFW needs a display on every machine: MUJOCO_GL=glfw without one ends in one line naming the variable."""
    proc = subprocess.run([RLRUN_EVAL, f"checkpoint={hopper_run}", "video=true", "episodes=1"],
                          capture_output=True, text=True, timeout=300, cwd=hopper_run,
                          env=_headless_env(MUJOCO_GL="glfw"))
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlrun-eval: error: cannot film env 'Hopper-v5'"), proc.stderr
    assert "MUJOCO_GL=glfw and no display; set MUJOCO_GL to a backend this machine has" in lines[0], lines[0]


def test_run_on_an_ale_env_in_a_reference_cycle_leaks_nothing(tmp_path: Path) -> None:
    env = _headless_env(PYTHONPATH=pythonpath_with_tests())
    proc = subprocess.run([RLRUN, "env.id=test_mujoco_atari:CyclicPong", "env.max_episode_steps=50", *SHORT_RUN,
                           f"hydra.run.dir={tmp_path}/run"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nanobind" not in proc.stderr, proc.stderr

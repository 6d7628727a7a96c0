"""Gymnasium's own env names (issue 23, item 3): `module:EnvId`, and ids that another package registers.

`gym.make` accepts `ale_py:ALE/Pong-v5` (import the module, then make the id), and `ALE/Pong-v5` or
`MiniGrid-Empty-5x5-v0` exist once ale-py / minigrid is imported. rlrun must take all of them, in a fresh
process (each process, Ray's env runners too, has its own registry), and say what to install when the
registering package is missing. The packages are rlrun's `atari`, `mujoco` and `minigrid` extras, which
`make install` installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RLRUN

from rlrun.cli import EXIT_USAGE
from rlrun.env.env_creation import EnvError

SHORT_RUN = ["stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32",
             "env_runners.num_envs_per_runner=2", "evaluation.episodes=1", "logger.console=plain"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RLRUN_DEBUG"}


def _python(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -c script args` in a fresh interpreter: nothing imported before the script, as in an actor."""
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=_env())


def test_ids_of_other_packages_are_built_in_a_fresh_process(tmp_path: Path) -> None:
    """The env-resolution path imports the registering package itself: nothing imported ale_py or minigrid
    before (a fresh interpreter), as in an env-runner actor."""
    ids = ["ale_py:ALE/Pong-v5", "ALE/Pong-v5", "MiniGrid-Empty-5x5-v0", "BabyAI-GoToRedBall-v0", "HalfCheetah-v5"]
    script = (
        "import sys\n"
        "from rlrun.env.env_creation import make_env\n"
        "for env_id in sys.argv[1:]:\n"
        "    env = make_env(env_id)\n"
        "    print(env_id, '->', env.spec.id)\n"
        "    env.close()\n"
    )
    proc = _python(script, ids, tmp_path)
    assert proc.returncode == 0, proc.stderr
    built = [line for line in proc.stdout.splitlines() if "->" in line]
    assert built == [f"{env_id} -> {env_id.partition(':')[2] or env_id}" for env_id in ids]


def test_module_env_id_trains_through_the_cli(tmp_path: Path) -> None:
    """`ale_py:ALE/Pong-v5` was read as a class name ("module 'ale_py' has no env class"); now it trains
    (RAM observations keep the default MLP small)."""
    proc = subprocess.run([RLRUN, "env.id=ale_py:ALE/Pong-v5", "+env.env_config.obs_type=ram", *SHORT_RUN,
                           f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done (iterations >= 1)" in proc.stdout


def test_minigrid_id_trains_on_its_raw_dict_observation(tmp_path: Path) -> None:
    """`MiniGrid-Empty-5x5-v0` was unknown, then refused for its Dict observation. Now it trains on that Dict
    (image through the CNN, direction one-hot), and its `mission` text is left out with one logged line."""
    proc = subprocess.run([RLRUN, "env.id=MiniGrid-Empty-5x5-v0", *SHORT_RUN, f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done (iterations >= 1)" in proc.stdout
    mission = [line for line in proc.stderr.splitlines() if "mission" in line]
    assert len(mission) == 1 and "observation part 'mission' (MissionSpace) is left out" in mission[0], proc.stderr


def test_missing_registering_package_is_one_line_in_the_cli(tmp_path: Path) -> None:
    """Without ale-py (blocked in sys.modules, so its import really fails) `env.id=ALE/Pong-v5` names what to
    install, in one line, exit 2, nothing written, instead of calling the id unknown."""
    script = "import sys\nsys.modules['ale_py'] = None\nfrom rlrun.cli import main\nsys.argv[0] = 'rlrun'\nmain()\n"
    proc = _python(script, ["env.id=ALE/Pong-v5", *SHORT_RUN, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "rlrun: error: env.id: env 'ALE/Pong-v5' is registered by the package ale_py, which cannot be imported "
        "(import of ale_py halted; None in sys.modules); pip install 'ale-py>=0.9' 'opencv-python-headless>=4.8' "
        "(rlrun's 'atari' extra: pip install '.[atari]' in rlrun's clone)"
    ]
    assert not (tmp_path / "run").exists()


def test_each_missing_package_names_its_extra(tmp_path: Path) -> None:
    """The same for every known package, and for gymnasium's own MuJoCo ids (registered, but gym.make would
    fail deep inside without the mujoco package)."""
    expected = {
        "ale_py:ALE/Pong-v5": ["module 'ale_py'",
                               "pip install 'ale-py>=0.9' 'opencv-python-headless>=4.8' (rlrun's 'atari' extra"],
        "MiniGrid-Empty-5x5-v0": ["package minigrid", "pip install 'minigrid>=2.3' (rlrun's 'minigrid' extra"],
        "BabyAI-GoToRedBall-v0": ["package minigrid", "pip install 'minigrid>=2.3' (rlrun's 'minigrid' extra"],
        "HalfCheetah-v5": ["needs the package mujoco", "pip install 'gymnasium[mujoco]>=1.0' (rlrun's 'mujoco' extra"],
    }
    script = (
        "import sys\n"
        "for name in ('ale_py', 'minigrid', 'mujoco'):\n"
        "    sys.modules[name] = None\n"
        "from rlrun.env.env_creation import EnvError, resolve_env\n"
        "for env_id in sys.argv[1:]:\n"
        "    try:\n"
        "        print('resolved', resolve_env(env_id))\n"
        "    except EnvError as e:\n"
        "        print(e)\n"
    )
    proc = _python(script, list(expected), tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(expected), proc.stdout
    for line, (env_id, texts) in zip(lines, expected.items()):
        for text in [f"'{env_id}'", *texts]:
            assert text in line, line


def test_misspelled_id_suggests_the_registered_one() -> None:
    from rlrun.env.env_creation import resolve_env

    with pytest.raises(EnvError, match=r"unknown env id 'CartPol-v1'; did you mean CartPole-v1\?"):
        resolve_env("CartPol-v1")

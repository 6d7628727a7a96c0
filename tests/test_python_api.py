"""`rlrun.train` and `rlrun.load` (issue 26): a run from Python writes the CLI's run directory, and the loaded
policy acts on single and batched observations, greedy or stochastic, with the run's observation filter and on
structured observations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import user_models  # noqa: F401  (tests/ on sys.path: the Dict env below is `user_models:PositionEnv`)

import rlrun
from rlrun.algorithms.algorithm import load_env_runner_state, read_checkpoint_state
from rlrun.config.errors import ConfigError
from rlrun.core import checkpointing as ckpt
from rlrun.core.checkpointing import CheckpointError
from rlrun.core.columns import Columns
from rlrun.core.packed_space import PackedSpace
from rlrun.core.space_json import space_from_json, space_to_json
from rlrun.env.env_runner_group import normalization_in_state
from rlrun.run.evaluation import EvalRequest, evaluate_checkpoint

pytestmark = pytest.mark.xdist_group("python_api")

TINY = {"stop": {"timesteps": None, "iterations": 2}, "env_runners": {"num_envs_per_runner": 2},
        "algo": {"train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1}, "evaluation": {"episodes": 2},
        "logger": {"console": "none"}}


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory) -> rlrun.RunResult:
    run_dir = tmp_path_factory.mktemp("api") / "run"
    return rlrun.train(["algo=ppo", "env=cartpole"], f"hydra.run.dir={run_dir}", **TINY)


def test_train_writes_the_clis_run_directory_and_returns_its_result(cartpole: rlrun.RunResult) -> None:
    run_dir = cartpole.run_dir
    for written in (".hydra/config.yaml", "metrics.jsonl", "learning_curve.png", "rlrun.log", "checkpoints/final"):
        assert (run_dir / written).exists(), written
    assert list(run_dir.rglob("events.out.tfevents.*"))  # TensorBoard
    assert cartpole.metrics["training_iteration"] == 2
    assert cartpole.eval_return == cartpole.metrics["evaluation/episode_return_mean"]
    assert cartpole.final_checkpoint == run_dir / "checkpoints" / "final"
    assert cartpole.best_checkpoint == run_dir / "checkpoints" / "best"


def test_a_bad_override_raises_the_clis_one_line_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^algo.lr must be > 0 \(got -1.0\)$"):
        rlrun.train("algo=ppo", f"hydra.run.dir={tmp_path / 'run'}", algo={"lr": -1})
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="takes overrides as 'key=value' strings"):
        rlrun.train("ppo")


def test_loaded_policy_acts_greedily_on_single_and_batched_observations(cartpole: rlrun.RunResult) -> None:
    policy = rlrun.load(cartpole.run_dir)  # the run directory: its best checkpoint
    assert policy.checkpoint == cartpole.best_checkpoint and policy.module_ids == ["default_policy"]
    batch = np.stack([gym.make("CartPole-v1").observation_space.sample() for _ in range(16)]).astype(np.float32)
    actions = policy.compute_actions(batch)
    module = policy.modules["default_policy"]
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: torch.as_tensor(batch)})[Columns.ACTION_DIST_INPUTS]
    assert actions.shape == (16,) and (actions == logits.argmax(-1).numpy()).all()  # greedy = argmax
    assert [policy.compute_action(obs) for obs in batch] == list(actions)
    final = rlrun.load(cartpole.final_checkpoint)  # any checkpoint directory
    assert final.checkpoint == cartpole.final_checkpoint


def test_stochastic_actions_follow_the_policy_distribution(cartpole: rlrun.RunResult) -> None:
    policy = rlrun.load(cartpole.final_checkpoint, seed=1)
    obs = np.zeros(4, np.float32)
    with torch.no_grad():
        logits = policy.modules["default_policy"].forward_inference({Columns.OBS: torch.as_tensor(obs[None])})[
            Columns.ACTION_DIST_INPUTS]
    p_right = torch.softmax(logits, -1)[0, 1].item()
    sampled = policy.compute_actions(np.repeat(obs[None], 2000, axis=0), explore=True)
    assert abs(sampled.mean() - p_right) < 0.05  # 2000 draws: std of the mean <= 0.011
    assert rlrun.load(cartpole.final_checkpoint, seed=1).compute_actions(np.repeat(obs[None], 50, 0),
                                                                         explore=True).tolist() == sampled[:50].tolist()


def test_box_actions_and_the_runs_observation_filter(tmp_path: Path) -> None:
    result = rlrun.train("algo=ppo", "env.id=Pendulum-v1", "env_runners.observation_filter=MeanStdFilter",
                         f"hydra.run.dir={tmp_path / 'run'}", **TINY)
    policy = rlrun.load(result.run_dir)
    saved = normalization_in_state(load_env_runner_state(policy.checkpoint))["obs"]
    assert policy.normalizer is not None and saved["count"] > 0
    assert policy.normalizer.stats.get_state()["obs"]["count"] == saved["count"]  # the checkpoint's statistics
    obs = np.array([[1.0, 0.0, 8.0], [-1.0, 0.0, -8.0]], np.float32)
    actions = policy.compute_actions(obs)
    filtered = policy.normalizer.observations(obs, update=False)
    with torch.no_grad():
        inputs = policy.modules["default_policy"].forward_inference({Columns.OBS: torch.as_tensor(filtered)})
    mean = inputs[Columns.ACTION_DIST_INPUTS][:, :1].numpy()
    assert actions.shape == (2, 1) and np.allclose(actions, np.clip(mean, -2.0, 2.0))
    assert not np.allclose(filtered, obs)  # the filter did change what the network saw


def format_2_copy(run: rlrun.RunResult, dest: Path) -> Path:
    """A copy of `run` as rlrun wrote it before spaces.json (format 2, commit 13e960f): every checkpoint's
    metadata says format 2, and it holds no spaces file."""
    shutil.copytree(run.run_dir, dest)
    for state_file in (dest / "checkpoints").glob("*/algorithm_state.json"):
        (state_file.parent / "spaces.json").unlink()
        ckpt.save_json(state_file, {**json.loads(state_file.read_text()), "format": 2})
    return dest


def test_a_format_2_checkpoint_loads_evaluates_and_resumes(cartpole: rlrun.RunResult, tmp_path: Path) -> None:
    """A user's runs from before spaces.json keep working: their spaces come from the run's env."""
    run_dir = format_2_copy(cartpole, tmp_path / "run")
    final = run_dir / "checkpoints" / "final"
    assert read_checkpoint_state(final)["format"] == 2 and not list(run_dir.rglob("spaces.json"))
    batch = np.stack([gym.make("CartPole-v1").observation_space.sample() for _ in range(16)]).astype(np.float32)
    old, new = rlrun.load(final), rlrun.load(cartpole.final_checkpoint)
    assert old.modules["default_policy"].observation_space == new.modules["default_policy"].observation_space
    assert old.compute_actions(batch).tolist() == new.compute_actions(batch).tolist()
    # rlrun-eval: the run's seed and evaluation runner reproduce the run's last evaluation of these weights.
    report = evaluate_checkpoint(EvalRequest(checkpoint=str(final), episodes=2))
    assert report["iteration"] == 2 and report["episode_return_mean"] == cartpole.eval_return
    result = rlrun.train(resume=str(run_dir), stop={"iterations": 3})
    assert result.run_dir == run_dir and result.metrics["training_iteration"] == 3
    assert read_checkpoint_state(result.final_checkpoint)["format"] == 3  # what it writes now is format 3
    assert (result.final_checkpoint / "spaces.json").is_file()


def test_a_format_2_checkpoint_whose_env_is_gone_and_an_unknown_format_are_one_line(cartpole: rlrun.RunResult,
                                                                                    tmp_path: Path) -> None:
    run_dir = format_2_copy(cartpole, tmp_path / "run")
    saved = run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text().replace("CartPole-v1", "no_such_package:NoSuchEnv"))
    with pytest.raises(CheckpointError) as error:
        rlrun.load(run_dir / "checkpoints" / "final")
    assert str(error.value) == (
        f"{run_dir / 'checkpoints' / 'final'} is a format-2 checkpoint, which does not hold its modules' spaces, and "
        "the env of its run ('no_such_package:NoSuchEnv') cannot be built to read them: EnvError: cannot import env "
        "module 'no_such_package' of env 'no_such_package:NoSuchEnv': No module named 'no_such_package'")
    for unknown in (1, 4):
        state_file = run_dir / "checkpoints" / "final" / "algorithm_state.json"
        ckpt.save_json(state_file, {**json.loads(state_file.read_text()), "format": unknown})
        for read in (rlrun.load, lambda path: evaluate_checkpoint(EvalRequest(checkpoint=str(path)))):
            with pytest.raises(CheckpointError) as error:
                read(run_dir / "checkpoints" / "final")
            assert str(error.value) == (f"{run_dir / 'checkpoints' / 'final'} is a checkpoint of format {unknown}; "
                                        "rlrun reads formats 2 and 3")


def test_structured_observations_are_packed_before_the_forward_and_no_env_is_needed(tmp_path: Path) -> None:
    result = rlrun.train("algo=ppo", "env.id=user_models:PositionEnv", f"hydra.run.dir={tmp_path / 'run'}", **TINY)
    observations = [{"position": p, "velocity": np.full(2, p / 5, np.float32)} for p in range(5)]
    batched = {"position": np.arange(5), "velocity": np.stack([o["velocity"] for o in observations])}
    actions = rlrun.load(result.run_dir).compute_actions(batched)
    # Deployed where the env does not exist: the checkpoint's spaces.json builds the modules.
    saved = result.run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text().replace("user_models:PositionEnv", "no_such_package:NoSuchEnv"))
    policy = rlrun.load(result.run_dir)
    assert isinstance(policy.modules["default_policy"].observation_space, PackedSpace)
    assert actions.shape == (5,) and [policy.compute_action(o) for o in observations] == list(actions)


def test_a_multi_agent_checkpoint_acts_by_module_id(tmp_path: Path) -> None:
    result = rlrun.train("algo=ppo", "env.id=multi_agent_envs:StaggeredEnv", "multi_agent.policies=independent",
                         f"hydra.run.dir={tmp_path / 'run'}", **TINY)
    policy = rlrun.load(result.run_dir)
    assert sorted(policy.module_ids) == ["early", "late", "long"]
    obs = np.array([[1.0, 1.0], [3.0, 1.0]], np.float32)
    for module_id in policy.module_ids:
        with torch.no_grad():
            logits = policy.modules[module_id].forward_inference({Columns.OBS: torch.as_tensor(obs)})[
                Columns.ACTION_DIST_INPUTS]
        assert policy.compute_actions(obs, module_id=module_id).tolist() == logits.argmax(-1).tolist()
    with pytest.raises(ValueError, match="several modules"):
        policy.compute_action(obs[0])


@pytest.mark.parametrize("space", [
    gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
    gym.spaces.Box(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), (2,), np.float64),
    gym.spaces.Box(0, 255, (4, 84, 84), np.uint8),
    gym.spaces.Discrete(7, start=-1),
    gym.spaces.MultiDiscrete([3, 4]),
    gym.spaces.MultiBinary(5),
    gym.spaces.Dict(a=gym.spaces.Tuple([gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (2,))])),
    PackedSpace(gym.spaces.Dict(image=gym.spaces.Box(0, 255, (3, 3), np.uint8), goal=gym.spaces.Discrete(4))),
], ids=lambda space: type(space).__name__)
def test_a_checkpoints_spaces_survive_json(space: gym.Space) -> None:
    loaded = space_from_json(json.loads(json.dumps(space_to_json(space))))
    assert loaded == space and type(loaded) is type(space)


def test_runs_started_in_the_same_second_get_directories_of_their_own(tmp_path: Path, monkeypatch) -> None:
    """Hydra's `outputs/<date>/<time>` is the same for two calls in one second; a script's calls come that fast."""
    from datetime import datetime

    from rlrun.api import fresh_run_dir

    monkeypatch.chdir(tmp_path)
    now = datetime(2026, 12, 7, 12, 0, 1)
    first = fresh_run_dir(now)
    assert first == Path("outputs/2026-12-07/12-00-01")
    first.mkdir(parents=True)
    assert fresh_run_dir(now) == Path("outputs/2026-12-07/12-00-01_1")


def test_a_rejected_command_never_removes_another_runs_directory(tmp_path: Path) -> None:
    from rlrun.run.job import remove_rejected

    run, rejected = tmp_path / "run", tmp_path / "rejected"
    (run / ".hydra").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    (rejected / ".hydra").mkdir(parents=True)
    remove_rejected(run, resuming=False)
    remove_rejected(rejected, resuming=False)
    assert (run / "metrics.jsonl").exists() and not rejected.exists()

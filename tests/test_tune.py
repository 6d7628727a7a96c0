"""`hydra/sweeper=tune` and the rlrun Trainable (issue 12): search spaces, ASHA and PBT studies, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from ray import tune

from rlrun.core.columns import DEFAULT_MODULE_ID
from rlrun.tune import make_trainable
from rlrun.tune.compose import compose_config, trial_config, trial_overrides
from rlrun.tune.search_space import search_space
from rlrun.tune.trainable import EXPLOITS_FILE

SMALL = ["algo.train_batch_size=256", "algo.minibatch_size=128", "algo.num_epochs=2",
         "env_runners.num_envs_per_runner=2", "logger.tensorboard=false", "stop.iterations=50"]


def test_an_embedded_run_imports_nothing_of_ray(tmp_path: Path) -> None:
    """rlrun's start-up time: Hydra imports every plugin (the Tune sweeper's, the Ray launcher's) at start, and
    they load Ray only for a sweep that uses them."""
    script = ("import sys; from rlrun.cli import main; "
              f"sys.argv = ['rlrun', 'stop.iterations=1', 'algo.train_batch_size=64', 'algo.minibatch_size=32', "
              f"'logger.console=none', 'hydra.run.dir={tmp_path / 'run'}']; main(); "
              "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] == 'ray'}))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_search_space_reads_the_optuna_sweepers_syntax() -> None:
    space = search_space({"algo.lr": "tag(log, interval(1e-4, 1e-2))", "algo.gamma": "interval(0.9, 0.99)",
                          "algo.num_epochs": "range(4, 12)", "algo.minibatch_size": "choice(64, 128)",
                          "algo.clip_param": "0.3"})
    assert isinstance(space["algo.lr"].get_sampler(), tune.search.sample.LogUniform)
    assert (space["algo.gamma"].lower, space["algo.gamma"].upper) == (0.9, 0.99)
    assert isinstance(space["algo.num_epochs"], tune.search.sample.Integer)
    assert (space["algo.num_epochs"].lower, space["algo.num_epochs"].upper) == (4, 12)
    assert space["algo.minibatch_size"].categories == [64, 128]
    assert space["algo.clip_param"] == 0.3


@pytest.mark.parametrize("params", [{"algo.lr": 3.3e-4, "algo.gamma": 0.97, "seed": 3},
                                    {"env": "acrobot", "algo.lr": 1e-3}])
def test_a_trials_config_is_what_its_command_line_composes(params) -> None:
    """Trials apply their values to a copy of the base composed once; a config group (env=acrobot) composes anew."""
    base = ["hparams_search=ppo_cartpole_asha", "stop.timesteps=50000"]
    cfg = trial_config(base, params)
    composed = compose_config([*base, *trial_overrides(params)])
    assert OmegaConf.to_container(cfg, resolve=True) == OmegaConf.to_container(composed, resolve=True)
    cfg.algo.lr = 1.0  # every trial gets a config of its own
    assert trial_config(base, params).algo.lr == params["algo.lr"]
    with pytest.raises(ConfigCompositionException, match="Could not override 'algo.lrr'"):
        trial_config(base, {"algo.lrr": 1e-3})


def test_a_pbt_trial_continues_another_trials_checkpoint_with_its_own_hyperparameters(tmp_path: Path) -> None:
    """What PBT's exploit does: trial B restores trial A's checkpoint. B then holds A's weights, optimizer
    moments and counters, and trains at B's learning rate (in its metrics) with B's entropy coefficient."""
    donor = make_trainable(SMALL, tmp_path / "a")(config={"algo.lr": 1e-3})
    taker = make_trainable(SMALL, tmp_path / "b")(config={"algo.lr": 2e-4, "algo.entropy_coeff": 0.01})
    try:
        for _ in range(2):
            donor.train()
        checkpoint = donor.save(str(tmp_path / "checkpoint"))
        taker.restore(checkpoint)
        given, taken = (t.run.algo.learner_group.get_state() for t in (donor, taker))
        for key, value in given["rl_module"][DEFAULT_MODULE_ID].items():
            np.testing.assert_array_equal(taken["rl_module"][DEFAULT_MODULE_ID][key], value)
        moments = [s["optimizer"][DEFAULT_MODULE_ID]["default_optimizer"]["state"] for s in (given, taken)]
        for slot in moments[0]:
            np.testing.assert_array_equal(moments[1][slot]["exp_avg"].numpy(), moments[0][slot]["exp_avg"].numpy())
        result = taker.train()
        assert result["rlrun_iteration"] == 3  # the donor's 2 iterations, then one of its own
        assert result["learners/default_policy/default_optimizer_learning_rate"] == pytest.approx(2e-4)
        assert taker.run.algo.config.entropy_coeff == 0.01
        exploit = json.loads((taker.run_dir / EXPLOITS_FILE).read_text())
        assert exploit["iteration"] == 2 and exploit["config"]["algo.lr"] == 2e-4
    finally:
        donor.stop()
        taker.stop()
    # Both are complete rlrun run directories: config, metrics, a final checkpoint.
    for run_dir in (donor.run_dir, taker.run_dir):
        assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "checkpoints" / "final").is_dir()


@pytest.mark.ray
@pytest.mark.own_ray
def test_an_asha_study_runs_trials_as_rlrun_runs_and_stops_the_worst_early(run_cli, tmp_path: Path) -> None:
    """One trial at a time (so the study is reproducible): 4 trials, two of which cannot learn (lr 1e-7);
    ASHA stops trials below the rung's median at 2 and 4 iterations; every trial is a run directory."""
    proc = run_cli("hparams_search=ppo_cartpole_asha", *SMALL, "hydra.sweeper.num_samples=4",
                   "hydra.sweeper.max_concurrent_trials=1", "hydra.sweeper.scheduler.time_attr=training_iteration",
                   "hydra.sweeper.scheduler.max_t=8",
                   "hydra.sweeper.scheduler.grace_period=2", "hydra.sweeper.scheduler.reduction_factor=2",
                   "hydra.sweeper.params={algo.lr: 'choice(1e-7, 3e-3)', algo.gamma: 'interval(0.95, 0.99)'}",
                   f"hydra.sweep.dir={tmp_path / 'study'}", timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = yaml.safe_load((tmp_path / "study" / "study_summary.yaml").read_text())
    trials = summary["trials"]
    assert len(trials) == 4 and all(t["status"] != "error" for t in trials)
    assert any(t["status"] == "stopped early" and t["iterations"] < 8 for t in trials), trials
    assert summary["best"]["params"]["algo.lr"] == 3e-3
    for trial in trials:
        run_dir = Path(trial["run_dir"])
        rows = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == trial["iterations"]
        assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "checkpoints" / "final").is_dir()


BAD_PBT_STUDY = """\
# @package _global_
defaults:
  - override /experiment: cartpole_ppo_fast
  - override /hydra/sweeper: tune
hydra:
  mode: MULTIRUN
  sweeper:
    scheduler: {type: pbt}
    params:
      algo.lr: interval(1e-4, 1e-2)
      algo.train_batch_size: choice(512, 1024)
"""


@pytest.mark.parametrize(("overrides", "expected"), [
    (["hydra.sweeper.scheduler.type=hyperband"], "hydra.sweeper.scheduler.type must be one of fifo, asha, pbt"),
    (["hydra.sweeper.metric=env_runners/reward"], "hydra.sweeper.metric must be one of"),
    (["hparams_search=bad_pbt"], "PBT cannot perturb algo.train_batch_size"),
])
def test_bad_study_settings_are_one_line_and_leave_no_run_directories(run_cli, tmp_path: Path, overrides, expected):
    """The PBT study is a user's own preset, found through hydra.searchpath as any custom study would be."""
    (tmp_path / "conf" / "hparams_search").mkdir(parents=True)
    (tmp_path / "conf" / "hparams_search" / "bad_pbt.yaml").write_text(BAD_PBT_STUDY)
    args = overrides if overrides[0].startswith("hparams_search") else ["hparams_search=ppo_cartpole_asha", *overrides]
    proc = run_cli(*args, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.sweep.dir={tmp_path / 'study'}")
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "study").exists()


@pytest.mark.slow
def test_a_pbt_study_exploits_through_the_cli(run_cli, tmp_path: Path) -> None:
    """4 trials, perturbations every 3 iterations: the bottom trial continues a top trial's checkpoint (its run
    directory lists each continuation) and every trial still ends as a complete run directory."""
    proc = run_cli("hparams_search=ppo_cartpole_pbt", *SMALL, "stop.iterations=12", "hydra.sweeper.num_samples=4",
                   "hydra.sweeper.scheduler.perturbation_interval=3", f"hydra.sweep.dir={tmp_path / 'study'}",
                   timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = yaml.safe_load((tmp_path / "study" / "study_summary.yaml").read_text())
    assert len(summary["trials"]) == 4 and all(t["status"] == "completed" for t in summary["trials"])
    exploits = [json.loads(line) for f in (tmp_path / "study").glob(f"trial_*/{EXPLOITS_FILE}")
                for line in f.read_text().splitlines()]
    assert exploits and all(e["iteration"] % 3 == 0 for e in exploits), exploits

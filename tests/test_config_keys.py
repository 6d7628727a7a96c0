"""Keys a command line adds must exist: only the free-form mappings take new ones (rlrun/config/keys.py).

The errors themselves (`+stop.timestep=500`, `+model.use_attention=true`, `+callbacks=...`) are cases of
tests/test_cli_errors.py; here, that every shipped config passes the check and that the free-form
mappings take new keys with and without Hydra's `+`.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import pythonpath_with_tests
from test_config import ALL_OPTIONS, compose

from rlrun.config.errors import ConfigError
from rlrun.config.keys import check_known_keys, free_form_overrides


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_shipped_option_has_only_known_keys(group: str, option: str):
    check_known_keys(compose(f"{group}={option}"))


@pytest.mark.parametrize("override", ["+env.env_config.length=5", "++multi_agent.policy_mapping={a_*: p}"])
def test_free_form_mappings_take_new_keys(override: str):
    check_known_keys(compose(override))


@pytest.mark.parametrize(("override", "key"), [
    ("+env.nosuch=1", "env.nosuch"),
    ("+evaluation.episode=3", "evaluation.episode"),
    ("+algo.replay_buffer.capacty=5", "algo.replay_buffer"),  # PPO has no replay buffer at all
    ("+multi_agent.policy_map={a: b}", "multi_agent.policy_map"),
])
def test_unknown_keys_outside_free_form_mappings_are_refused(override: str, key: str):
    with pytest.raises(ConfigError, match=f"unknown key {key}"):
        check_known_keys(compose(override))


def test_free_form_overrides_need_no_plus():
    argv = ["env.env_config={N: 3}", "multi_agent.policy_mapping.a_0=p", "env.id=x", "+env.env_config.y=1", "-m"]
    assert free_form_overrides(argv) == ["++env.env_config={N: 3}", "++multi_agent.policy_mapping.a_0=p",
                                         "env.id=x", "+env.env_config.y=1", "-m"]


def test_env_config_takes_a_new_key_without_plus_through_the_cli(run_cli, tmp_path, monkeypatch):
    """`env.env_config={length: 7}` was Hydra's "Key 'length' is not in struct"; it reaches the env now."""
    monkeypatch.setenv("PYTHONPATH", pythonpath_with_tests())  # the subprocess imports user_envs from tests/
    proc = run_cli("env.id=user_envs:TinyEnv", "env.env_config={length: 7}", "stop.timesteps=null",
                   "stop.iterations=1", "algo.train_batch_size=64", "algo.minibatch_size=32", "algo.num_epochs=1",
                   "evaluation.episodes=1")
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((tmp_path / "run" / ".hydra" / "config.yaml").read_text())
    assert saved["env"]["env_config"] == {"length": 7}

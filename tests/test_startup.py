"""Start-up cost: `rlrun` registers every algorithm's schema without importing what only a run needs.

Each command (`rlrun --help`, a config error) used to import torch, ray and gymnasium through the algorithms'
config classes before doing anything; these tests fail if an import at module level brings that back.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from rlrun.algorithms.off_policy import ReplayBufferSchema
from rlrun.algorithms.registry import ALGORITHMS, SCHEMAS, algorithm_schemas, get_algorithm_config_class
from rlrun.data.replay_buffers import REPLAY_BUFFERS

# What a run imports and a start-up must not (each costs from a tenth of a second to over a second of CPU).
HEAVY = ("torch", "ray", "gymnasium", "pettingzoo", "minari", "mlflow", "wandb", "tensorboard", "scipy")


def test_every_algorithm_has_the_schema_its_config_class_uses() -> None:
    assert set(SCHEMAS) == set(ALGORITHMS)
    assert algorithm_schemas() == {name: get_algorithm_config_class(name).schema for name in ALGORITHMS}


def test_the_replay_buffer_choices_are_the_replay_buffers() -> None:
    (buffer_type,) = [f for f in dataclasses.fields(ReplayBufferSchema) if f.name == "type"]
    assert list(buffer_type.metadata["choices"]) == sorted(REPLAY_BUFFERS)


def test_rlrun_help_registers_the_schemas_and_imports_nothing_heavy() -> None:
    script = f"""
import json, sys
from hydra.core.config_store import ConfigStore
sys.argv = ["rlrun", "--help"]
from rlrun.cli import main
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
algos = sorted(name.removesuffix(".yaml") for name in ConfigStore.instance().list("schema/algo"))
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"algos": algos, "heavy": heavy}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["heavy"] == []
    assert set(ALGORITHMS) <= set(found["algos"])


def test_rlrun_eval_help_and_a_bad_argument_import_nothing_heavy() -> None:
    script = f"""
import json, sys
from rlrun.cli_eval import main
codes = []
for argv in (["--help"], ["checkpoint=x", "episodes=0"]):
    sys.argv = ["rlrun-eval", *argv]
    try:
        main()
    except SystemExit as e:
        codes.append(e.code)
print(json.dumps({{"codes": codes, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"codes": [0, 2], "heavy": []}
    assert "rlrun-eval: error: episodes must be >= 1 (got 0)" in result.stderr


def test_a_value_out_of_range_is_refused_before_the_run_imports_torch(tmp_path) -> None:
    run_dir = tmp_path / "run"
    script = f"""
import json, sys
sys.argv = ["rlrun", "algo=dqn", "algo.replay_buffer.alpha=-1", "hydra.run.dir={run_dir}"]
from rlrun.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 2, "heavy": []}
    assert result.stderr.strip() == "rlrun: error: algo.replay_buffer.alpha must be >= 0 (got -1.0)"
    assert not run_dir.exists()

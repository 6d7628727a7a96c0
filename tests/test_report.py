"""`rlrun-report`: the statistics on known values, grouping and thresholds, errors, and a real sweep end to end."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import RLRUN

from rlrun.report.cli import main
from rlrun.report.runs import discover_runs, group_runs, load_run
from rlrun.report.stats import bootstrap_ci, iqm
from rlrun.report.summary import default_threshold, summarize_run
from rlrun.run.recorder import read_metrics

REPORT = str(Path(sys.executable).with_name("rlrun-report"))
RETURN_KEY = "env_runners/episode_return_mean"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(path: Path, rows: list[dict], overrides: list[str] | None = None, config: dict | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if overrides is not None:
        (path / ".hydra").mkdir()
        (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {}))
    return path


def rows(*returns: float | None) -> list[dict]:
    """Iterations of 1000 env steps and 2 s each, with these mean returns (None: no episode finished yet)."""
    out = []
    for i, ret in enumerate(returns, start=1):
        row = {"training_iteration": i, "num_env_steps_sampled_lifetime": 1000 * i, "time_total_s": 2.0 * i}
        if ret is not None:
            row[RETURN_KEY] = ret
        out.append(row)
    return out


# -- statistics ----------------------------------------------------------------------------------


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm([1, 2, 3, 100]) == 2.5  # floor(4/4) = 1 cut from each end
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == 4.5  # unsorted input; 2 cut from each end -> 3, 4, 5, 6
    assert iqm([5, 1, 3, 1000, -1000]) == 3.0  # floor(5/4) = 1 cut from each end -> 1, 3, 5
    assert iqm([1.0, 4.0]) == 2.5  # fewer than 4 seeds: nothing cut, the mean


def test_bootstrap_ci_contains_the_mean_shrinks_with_more_data_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    few, many = rng.normal(10, 2, size=5), rng.normal(10, 2, size=500)
    widths = []
    for values in (few, many):
        low, high = bootstrap_ci(values)
        assert low < values.mean() < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 5
    assert bootstrap_ci(few) == bootstrap_ci(few)
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    # Two seeds: resampled means are a, (a+b)/2 or b, so the 95% interval is exactly [min, max].
    assert bootstrap_ci([2.0, 6.0]) == (2.0, 6.0)


def test_bootstrap_band_of_curves_has_one_interval_per_point() -> None:
    curves = np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 6.0], [0.0, 2.0, 4.0]])
    low, high = bootstrap_ci(curves)
    assert low.shape == high.shape == (3,)
    assert low[0] == high[0] == 0.0
    assert np.all(low <= curves.mean(axis=0)) and np.all(curves.mean(axis=0) <= high)


# -- runs, grouping, thresholds ------------------------------------------------------------------


def test_runs_group_by_experiment_overrides_and_fall_back_to_the_directory_name(tmp_path: Path) -> None:
    for job, (seed, lr) in enumerate([(0, "0.001"), (0, "0.0003"), (1, "0.001"), (1, "0.0003")]):
        write_run(tmp_path / "sweep" / str(job), rows(10.0),
                  [f"seed={seed}", f"algo.lr={lr}", "stop.iterations=3", "logger.console=none"])
    write_run(tmp_path / "sweep" / "10", rows(10.0), ["seed=2", "algo.lr=0.001", "stop.iterations=3"])
    write_run(tmp_path / "old_run", rows(10.0))

    paths = discover_runs([str(tmp_path / "sweep"), str(tmp_path / "old_run"), str(tmp_path / "sweep" / "0")])
    assert [p.name for p in paths] == ["0", "1", "2", "3", "10", "old_run"]  # natural order, each run once
    groups = group_runs([load_run(p) for p in paths])
    # seed= and logger.* do not split configs; the common stop.iterations=3 is left out of the labels.
    assert [(g.label, [r.path.name for r in g.runs]) for g in groups] == [
        ("algo.lr=0.001", ["0", "2", "10"]),
        ("algo.lr=0.0003", ["1", "3"]),
        ("old_run", ["old_run"]),
    ]


def test_threshold_defaults_to_the_stop_goal_then_the_env_spec() -> None:
    assert default_threshold({"stop": {"return_mean": 200}, "env": {"id": "CartPole-v1"}}) == 200.0
    assert default_threshold({"stop": {"return_mean": None}, "env": {"id": "CartPole-v1"}}) == 475.0
    assert default_threshold({"env": {"id": "Pendulum-v1"}}) is None  # registered without a threshold
    assert default_threshold({"env": {"id": "my_pkg.my_module:MyEnv"}}) is None
    assert default_threshold(None) is None


def test_run_summary_finds_the_first_iteration_at_the_threshold(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "run", rows(None, 5.0, 12.0, 9.0, 15.0)))
    summary = summarize_run(run, threshold=12.0)
    assert (summary.final_return, summary.steps_to_threshold, summary.time_to_threshold_s) == (15.0, 3000, 6.0)
    assert summary.steps_per_s == 500.0
    assert not summarize_run(run, threshold=20.0).reached_threshold


# -- errors --------------------------------------------------------------------------------------


def test_multi_agent_runs_get_each_modules_final_return(tmp_path: Path) -> None:
    for seed, (first, second) in enumerate([(300.0, 200.0), (500.0, 400.0)]):
        last = {**rows(1.0)[0], RETURN_KEY: first + second, "env_runners/module_episode_return_mean/agent_0": first,
                "env_runners/module_episode_return_mean/agent_1": second}
        write_run(tmp_path / f"seed{seed}", [last], [f"seed={seed}", "env=multi_cartpole"])
    main([str(tmp_path / "seed0"), str(tmp_path / "seed1"), "--out", str(tmp_path / "report")])
    report = (tmp_path / "report" / "report.md").read_text()
    section = report.split("## Returns per module")[1]
    assert "| env=multi_cartpole | agent_0 | 400.00 [300.00, 500.00] | 400.00 |" in section
    assert "| env=multi_cartpole | agent_1 | 300.00 [200.00, 400.00] | 300.00 |" in section


def test_corrupt_line_is_one_error_line_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", rows(1.0, 2.0, 3.0))
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + '{"training_iteration": 4, "num_env')  # torn last line: fine
    main([str(run), "--out", str(tmp_path / "ok")])
    assert (tmp_path / "ok" / "report.md").is_file()

    lines = text.splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], "not json", lines[2]]) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(run), "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"rlrun-report: error: {run / 'metrics.jsonl'}: line 2 is not valid JSON\n"
    assert not (tmp_path / "bad").exists()


def test_missing_directory_is_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.run([REPORT, str(tmp_path / "nope"), "--out", str(tmp_path / "rep")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"rlrun-report: error: no such directory: {tmp_path / 'nope'}\n"
    assert not (tmp_path / "rep").exists()


# -- end to end ----------------------------------------------------------------------------------


def comparison_rows(report_md: str) -> dict[str, dict[str, str]]:
    """The first table of report.md, as {config label: {column: cell}}."""
    lines = report_md.split("| config |", 1)[1].split("\n\n", 1)[0].splitlines()
    header = ["config", *[c.strip() for c in lines[0].strip(" |").split("|")]]
    table = [dict(zip(header, [c.strip() for c in line.strip(" |").split("|")])) for line in lines[2:]]
    return {row["config"]: row for row in table}


def number(cell: str) -> float:
    return float(cell.replace(",", "").removesuffix(" s"))


def report_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`rlrun-report <argv>` in this process (its CLI as a subprocess is tested above): its stdout.

    A failure would exit (SystemExit, status 2) with its error line on stderr: the test fails with it.
    """
    capsys.readouterr()
    main(argv)
    return capsys.readouterr().out


def test_report_on_a_real_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [RLRUN, "-m", "seed=0,1", "algo.lr=0.001,0.0003", "stop.iterations=3", "logger.console=none",
         # 64 steps per env and iteration: every iteration finishes CartPole episodes, and costs little
         "algo.train_batch_size=128", "algo.minibatch_size=64", "algo.num_epochs=1",
         "env_runners.num_envs_per_runner=2", "evaluation.episodes=2", f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr

    # What the report should say, straight from each job's metrics.jsonl and overrides.
    by_lr: dict[str, list[list[dict]]] = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        lr = next(o for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) if o.startswith("algo.lr"))
        by_lr.setdefault(lr, []).append(read_metrics(job))
    assert sorted(by_lr) == ["algo.lr=0.0003", "algo.lr=0.001"] and all(len(v) == 2 for v in by_lr.values())

    out = tmp_path / "rep"
    stdout = report_in_process([str(sweep), "--out", str(out)], capsys)
    report = (out / "report.md").read_text()
    table = comparison_rows(report)
    assert list(table) == ["algo.lr=0.001", "algo.lr=0.0003"]  # sweep order; seed and stop.iterations not in labels
    assert "`stop.iterations=3`" in report
    for lr, runs in by_lr.items():
        row = table[lr]
        assert row["config"] in stdout
        finals = [run[-1][RETURN_KEY] for run in runs]
        mean = statistics.fmean(finals)
        assert row["seeds"] == "2"
        # Two seeds: the bootstrap CI is [min, max] and the IQM is the mean.
        assert row["final return: mean [95% CI]"] == f"{mean:.2f} [{min(finals):.2f}, {max(finals):.2f}]"
        assert row["IQM"] == f"{mean:.2f}"
        assert (row["threshold"], row["reached"]) == ("475", "0/2")  # CartPole-v1's reward_threshold, not reached
        assert row["env steps to threshold"] == row["wall time to threshold"] == "—"
        sps = statistics.fmean(run[-1]["num_env_steps_sampled_lifetime"] / run[-1]["time_total_s"] for run in runs)
        assert number(row["env steps/s"]) == pytest.approx(sps, abs=0.5)
    for name in ("learning_curves_steps.png", "learning_curves_time.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        assert f"]({name})" in report
    assert sorted(p.name for p in out.iterdir()) == ["learning_curves_steps.png", "learning_curves_time.png",
                                                     "report.md"]

    # A threshold every run reaches: steps / wall time to it are medians of each run's first iteration there.
    threshold = min(run[-1][RETURN_KEY] for runs in by_lr.values() for run in runs)
    report_in_process([str(sweep), "--out", str(out), "--threshold", str(threshold)], capsys)
    table = comparison_rows((out / "report.md").read_text())
    for lr, runs in by_lr.items():
        first = [next(r for r in run if r.get(RETURN_KEY, -1e9) >= threshold) for run in runs]
        assert table[lr]["reached"] == "2/2"
        assert number(table[lr]["env steps to threshold"]) == pytest.approx(
            statistics.median(r["num_env_steps_sampled_lifetime"] for r in first), abs=0.5)
        assert number(table[lr]["wall time to threshold"]) == pytest.approx(
            statistics.median(r["time_total_s"] for r in first), abs=0.05)

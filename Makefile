# rlrun developer targets. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python writes a module's bytecode the first time a process imports it, so only what runs gets compiled
# (pip --no-compile below: compiling all of torch, Ray and the extras up front took ~50 s of a ~105 s install).
# This needs bytecode writing on: with PYTHONDONTWRITEBYTECODE=1 (set on some machines) every process, each
# test's and each Ray worker's, would compile torch again from source.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run test test-all lint docs bench bench-presets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
	$(PY) -m pip install -q --no-compile torch==2.13.0
	# The tracker extras too: tests/test_trackers.py runs a real MLflow server and W&B offline.
	$(PY) -m pip install -q --no-compile -e ".[dev,docs,mlflow,wandb,multiagent,atari,mujoco,minigrid,envpool]"
	# gymnasium's render extras bring pygame, mpe2 brings pygame-ce: both install the `pygame` module into one
	# folder, so whichever pip wrote last wins file by file. pygame-ce alone, written whole, renders both.
	$(PY) -m pip uninstall -q -y pygame
	$(PY) -m pip install -q --no-compile --force-reinstall --no-deps pygame-ce
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rlrun experiment=cartpole_ppo_fast

test: $(STAMP)
	# Two workers: the Ray tests in order on one (tests/conftest.py), the rest beside them.
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadgroup --durations=40

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check rlrun tests scripts

docs: $(STAMP)
	# The site, into site/: open site/index.html from disk, or serve it with `.venv/bin/mkdocs serve`.
	# NO_MKDOCS_2_WARNING: Material prints its end-of-life notice (May 2027) on every build otherwise.
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) scripts/bench_cartpole.py
	$(PY) scripts/bench_sampling.py
	$(PY) scripts/bench_callbacks.py
	$(PY) scripts/bench_learners.py
	$(PY) scripts/bench_async.py
	$(PY) scripts/bench_multiagent.py
	$(PY) scripts/simple_spread_baselines.py
	# Beside SB3 + rl-zoo3 (installs them into .venv-bench on first use).
	$(PY) scripts/bench_vs_sb3.py
	$(PY) scripts/bench_offpolicy.py
	# Recurrent PPO on CartPole without velocities beside sb3-contrib's RecurrentPPO; the LSTM's cost against the MLP.
	$(PY) scripts/bench_recurrent.py
	$(PY) scripts/bench_offline.py
	$(PY) scripts/bench_sweeps.py
	# Atari from pixels (tens of minutes): PPO beside CleanRL (../shared/anchors) and SB3 + rl-zoo3, APPO vs PPO,
	# replay memory, inference overhead; the table goes to /tmp/bench_pixels.md.
	$(PY) scripts/bench_pixels.py

bench-presets: $(STAMP)
	# Every preset in rlrun/conf/experiment/, seeds 0 1 2: docs/benchmarks.md and docs/benchmarks/*.png.
	$(PY) scripts/bench_presets.py

clean:
	rm -rf $(VENV) .venv-bench build dist site *.egg-info .pytest_cache .ruff_cache

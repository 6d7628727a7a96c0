"""The README and every page of the docs site (docs/**/*.md) say only what is true of the code.

Each fenced block is checked by what it is (tests/docs_commands.py): a ```bash line is composed and validated as
the CLI would before training (or parsed by its own parser), a ```text block that shows `$ rlrun ...` and an
`rlrun: error:` line must be exactly that command's error, ```python blocks run in order in one namespace, ```yaml
parses and a preset in it composes from its own config directory. The site itself builds with `mkdocs build
--strict` (a broken link or anchor fails), every algorithm has its page and every preset its benchmark row.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from docs_commands import ROOT, Block, argv_of, blocks, check_command, commands, compose_jobs
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from rlrun.algorithms.registry import ALGORITHMS
from rlrun.cli import one_line
from rlrun.config.errors import ConfigError

pytestmark = pytest.mark.xdist_group("docs")  # one worker makes the $RUN directory once

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)]
PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]
LANGUAGES = {"bash", "python", "yaml", "text"}
README_LIMIT = 15_000
# `rlrun.module.path:Name` or `rlrun.module.path.Name` in backquotes, as api.md writes its imports.
_QUALIFIED_NAME = re.compile(r"`(rlrun(?:\.\w+)+)(?::(\w+))?`")
_KEYS_MARKER = "<!-- rlrun:keys algo={} -->"
# The datasets of the offline presets (their `offline.dataset`), relative to where they run.
_PRESET_DATASETS = sorted({(yaml.safe_load(p.read_text()).get("offline") or {}).get("dataset")
                           for p in (ROOT / "rlrun" / "conf" / "experiment").glob("*.yaml")} - {None})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Where the docs' commands run: a finished run with a checkpoint (`$RUN`, what `rlrun resume=$RUN` and
    `rlrun-eval` need) and the datasets the offline presets read, recorded from it as the offline page says."""
    # In this process (rlrun.train, and rlrun-eval's own parser and evaluation): the run and the datasets are what
    # the pages' commands read, not what these tests check, and a CLI process each would cost its start-up thrice.
    import rlrun
    from rlrun.cli_eval import parse_args
    from rlrun.run.evaluation import evaluate_checkpoint

    tmp = tmp_path_factory.mktemp("docs")
    rlrun.train("stop.iterations=1", "algo.train_batch_size=64", "algo.num_epochs=1", "algo.minibatch_size=32",
                "logger.console=none", f"hydra.run.dir={tmp / 'run'}")
    for dataset in _PRESET_DATASETS:  # `record=<dataset>` as run from `tmp`, where the presets read it
        evaluate_checkpoint(parse_args([f"checkpoint={tmp / 'run'}", "episodes=2", f"record={tmp / dataset}"]))
    return tmp


@pytest.fixture
def substitutions(workdir: Path, monkeypatch) -> dict[str, str]:
    """`$RUN` and `$SWEEP` (a directory a sweep would have written: only parsed, never read), from `workdir`."""
    monkeypatch.chdir(workdir)
    return {"RUN": str(workdir / "run"), "SWEEP": str(workdir / "multirun")}


def test_readme_is_short_and_its_links_resolve():
    """The README says what rlrun is and how to start; everything else is a page of the site, which its links
    (not checked by mkdocs: the README is not a page) must reach."""
    text = README.read_text()
    assert len(text) <= README_LIMIT
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_block_says_what_it_is(page: Path):
    """An untagged block would escape every check below."""
    untagged = [b.line for b in blocks(page) if b.lang not in LANGUAGES]
    assert not untagged, f"{page.name}: blocks without one of {sorted(LANGUAGES)} at lines {untagged}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_commands_compose(page: Path, substitutions: dict[str, str]):
    """Every bash line; the page's own preset files are written first, as a reader would have saved them."""
    for block in blocks(page, "yaml"):
        _save_preset(block, Path.cwd())
    for block in blocks(page, "bash"):
        for command in commands(block):
            try:
                check_command(command, substitutions)
            except Exception as e:  # which command of which page, and why
                pytest.fail(f"{page.name}:{block.line}: `{command}`: {type(e).__name__}: {one_line(e)}")


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_error_examples_are_the_real_errors(page: Path, substitutions: dict[str, str]):
    """A ```text block `$ rlrun <args>` followed by `rlrun: error: <message>` shows exactly what rlrun prints."""
    for block in blocks(page, "text"):
        lines = block.text.splitlines()
        if len(lines) < 2 or not lines[0].startswith("$ rlrun ") or not lines[1].startswith("rlrun: error: "):
            continue
        with pytest.raises(Exception) as error:  # noqa: PT011 -- any of rlrun's, Hydra's or OmegaConf's
            compose_jobs(argv_of(lines[0].removeprefix("$ "), substitutions)[1:])
        assert f"rlrun: error: {one_line(error.value)}" == lines[1], f"{page.name}:{block.line}"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_yaml_parses_and_presets_compose(page: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in blocks(page, "yaml"):
        yaml.safe_load(block.text)
        preset = _save_preset(block, tmp_path)
        if preset:
            assert compose_jobs(["--config-dir", *preset])


def _save_preset(block: Block, where: Path) -> tuple[str, str] | None:
    """A preset file a page shows (`# @package _global_`, then `# file: <dir>/experiment/<name>.yaml`), saved
    under `where`: its config directory and the `experiment=<name>` that selects it; None for other YAML."""
    lines = block.text.splitlines()
    if lines[0] != "# @package _global_":
        return None
    file = re.fullmatch(r"# file: ((.+)/experiment/(\w+)\.yaml)", lines[1])
    assert file, f"line {block.line}: a preset says where it lives: `# file: <dir>/experiment/<name>.yaml`"
    (where / file.group(1)).parent.mkdir(parents=True, exist_ok=True)
    (where / file.group(1)).write_text(block.text)
    return file.group(2), f"experiment={file.group(3)}"


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")],
                         ids=[i for p, i in zip(PAGES, PAGE_IDS) if blocks(p, "python")])
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch):
    """Each page's ```python blocks, in order, in one namespace, in a temporary directory (what they write
    goes nowhere): a page's examples are its promise to a reader."""
    monkeypatch.chdir(tmp_path)
    # As a reader's own script: not under this file's `from __future__` imports (dont_inherit), and a module of its
    # own in sys.modules (dataclasses look their module up there).
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for block in blocks(page, "python"):
        code = compile(block.text, f"{page.name} line {block.line}", "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 -- the docs' own examples, run as a reader would


def test_the_site_builds_strict(tmp_path: Path):
    """`make docs`: every page in the nav, no broken link or anchor, every generated table expands."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "algorithms" / "ppo.html").is_file()


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_has_its_page(name: str):
    """In the nav, with the key table generated from its schema; the table lists every key a user can set."""
    from rlrun.config.reference import keys_table
    from rlrun.tune.compose import compose_config

    page = DOCS / "algorithms" / f"{name}.md"
    assert f"algorithms/{name}.md" in (ROOT / "mkdocs.yml").read_text()
    assert _KEYS_MARKER.format(name) in page.read_text()
    table = keys_table(f"algo={name}")
    keys = _leaf_keys(compose_config([f"algo={name}"]).algo, "algo")
    missing = [k for k in keys if f"| `{k}` |" not in table and k != "algo.name"]
    assert not missing, f"keys of algo={name} missing from its table: {missing}"


def _leaf_keys(node, prefix: str) -> list[str]:
    from omegaconf import DictConfig

    out = []
    for key, value in node.items_ex(resolve=False):
        dotted = f"{prefix}.{key}"
        out += _leaf_keys(value, dotted) if isinstance(value, DictConfig) else [dotted]
    return out


def test_every_preset_has_a_benchmark_row():
    """docs/benchmarks.md measures every preset shipped under rlrun/conf/experiment/ (scripts/bench_presets.py)."""
    presets = {p.stem for p in (ROOT / "rlrun" / "conf" / "experiment").glob("*.yaml")}
    rows = set(re.findall(r"^\| `(\w+)` \|", (DOCS / "benchmarks.md").read_text(), re.MULTILINE))
    assert presets <= rows, f"presets without a row in docs/benchmarks.md: {sorted(presets - rows)}"


def test_names_in_the_api_guide_exist():
    """Every `rlrun.x.y` / `rlrun.x.y:Name` api.md mentions can be imported."""
    names = _QUALIFIED_NAME.findall((DOCS / "api.md").read_text())
    assert names
    for dotted, attr in names:
        if attr:
            assert hasattr(importlib.import_module(dotted), attr), f"{dotted}:{attr}"
            continue
        try:
            importlib.import_module(dotted)
        except ModuleNotFoundError:  # `rlrun.pkg.Name`: a class or function of a module
            module, _, name = dotted.rpartition(".")
            assert hasattr(importlib.import_module(module), name), dotted


def test_a_command_check_can_fail():
    """The checks above refuse what the CLI refuses: an unknown key, an out-of-range value, a Makefile target
    that does not exist, a program the docs tests do not know."""
    for bad in ("rlrun algo.lrr=1", "rlrun learners.num=-1", "make docz", "frobnicate --now"):
        with pytest.raises((AssertionError, ConfigError, HydraException, OmegaConfBaseException)):
            check_command(bad, {})


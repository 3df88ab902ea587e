"""What a new user meets first: `--help` without torch, `--version`, shipped specs from any working directory, and
an installed wheel (not an editable checkout) that carries its specs, stored results, paper CSV and configs."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from runner_helpers import write_spec

from tasbench.cli import build_parser
from tasbench.installation import SPECS_DIR, shipped_specs, spec_path
from tasbench.runner.regression import default_expected
from tasbench.runner.spec import load_sweep
from tasbench.runner.store import cpu_name

from helpers import assert_one_line_error
from helpers import run_cli as run

ROOT = Path(__file__).parents[1]
HEAVY = ("torch", "numpy", "pandas", "matplotlib", "wandb")
IMPORTED_AFTER = """
import contextlib, io, sys
from tasbench.cli import build_parser
with contextlib.redirect_stdout(io.StringIO()):  # the help text
    try:
        build_parser().parse_args(sys.argv[1:])
    except SystemExit:
        pass
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


def heavy_imports(*argv: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after parsing `tas-bench ARGV` (a `--help` exits there)."""
    code = IMPORTED_AFTER.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["sweep", "--help"],
        ["regress", "--help"],
        ["report", "--help"],
        ["compare", "--help"],
        ["--version"],
    ],
)
def test_help_imports_no_torch(argv):
    assert heavy_imports(*argv) == []


def test_a_command_that_needs_torch_imports_it_when_chosen():
    """The other side of the check above: it does see torch when a command's options need it."""
    assert "torch" in heavy_imports("train", "--help")


def test_version_names_the_package_and_the_checkout(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["--version"])
    out = capsys.readouterr().out
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert e.value.code == 0 and out.startswith("tas-bench 0.1.0 (git ") and commit.stdout.strip() in out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--no-progress"],
        ["prune", "--method", "l1", "--no-progress"],
        ["regress", "--no-progress"],
        ["bench", "search-step", "--no-progress"],
    ],
)
def test_long_commands_take_no_progress(argv):
    assert build_parser().parse_args(argv).no_progress is True


@pytest.mark.slow
def test_a_shipped_spec_by_name_from_any_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    expected = len(load_sweep(ROOT / "benchmarks" / "regression.yaml").runs)
    for name in ("regression", "regression.yaml"):
        code, out, _ = run(capsys, "sweep", name, "--dry-run", "--out", str(tmp_path / "runs"))
        assert code == 0 and out == {"sweep": "regression", "dry_run": True, "runs": expected}
    assert spec_path("cifar10") == ROOT / "benchmarks" / "cifar10.yaml"
    assert shipped_specs() == sorted(p.stem for p in (ROOT / "benchmarks").glob("*.yaml"))


def test_a_path_stays_a_path(capsys, monkeypatch, tmp_path):
    """A file in the working directory wins over a shipped spec of the same name; a missing path is not looked up
    among the shipped specs, and the error lists them."""
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path, name="mine").rename(tmp_path / "regression.yaml")
    code, out, _ = run(capsys, "sweep", "regression.yaml", "--dry-run", "--out", str(tmp_path / "runs"))
    assert code == 0 and out["sweep"] == "mine"
    names = ", ".join(shipped_specs())
    for spec in ("benchmarks/proxy.yaml", "cifar1"):
        assert_one_line_error(
            capsys,
            ["sweep", spec, "--out", str(tmp_path / "runs")],
            f"sweep spec '{spec}' does not exist; give a path to a YAML file or a shipped spec: {names}",
        )


def test_regress_finds_its_spec_and_stored_results_from_any_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    # the default spec: read, then stopped by the missing results file before anything runs
    assert_one_line_error(capsys, ["regress", "--expected", "none.json"], "no stored regression results at 'none.json'")
    # the default stored results: the repository's file, here for other runs than this tiny spec's
    stored = default_expected(cpu_name(), update=False).resolve()  # this CPU model's, or another's
    assert stored.parent == ROOT / "benchmarks" / "regression"
    assert_one_line_error(
        capsys,
        ["regress", "--spec", str(write_spec(tmp_path))],
        f"stored regression results '{stored}' are for other runs than the spec",
    )


def build_wheel(tmp_path: Path) -> Path:
    """The wheel pip builds from a copy of this source tree (offline: no index, no build isolation)."""
    source = tmp_path / "source"
    for name in ("tasbench", "tas", "baselines", "benchmarks", "results"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    built = subprocess.run(
        [*pip, str(source), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("tas_bench-*.whl")
    return wheel


@pytest.mark.slow
def test_an_installed_wheel_carries_its_files_and_runs_from_anywhere(tmp_path):
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    shipped = [
        (ROOT / "benchmarks", "*.yaml", "specs"),
        (ROOT / "benchmarks", "regression/*.json", "specs"),
        (ROOT / "results" / "paper", "*.csv", "paper"),
        (ROOT / "tasbench" / "official_configs", "**/*.config", "official_configs"),
    ]
    for folder, pattern, installed in shipped:
        files = sorted(folder.glob(pattern))
        assert files, pattern
        for source in files:
            copy = site / "tasbench" / installed / source.relative_to(folder)
            assert copy.read_bytes() == source.read_bytes(), copy
    assert not (site / "tasbench" / "specs").is_symlink()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def tas_bench(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tasbench.cli", *argv],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(site)},
        )

    where = tas_bench("--version")
    assert where.returncode == 0 and where.stdout == "tas-bench 0.1.0\n"  # no checkout: no git commit
    planned = tas_bench("sweep", "regression", "--dry-run", "--out", str(tmp_path / "runs"))
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["runs"] == len(load_sweep(SPECS_DIR / "regression.yaml").runs)
    update = tas_bench("regress", "--update")
    assert update.returncode == 2 and update.stdout == "" and update.stderr.count("\n") == 1
    assert (
        "tas-bench: error: --update rewrites benchmarks/regression/<cpu>.json in the tas-bench repository, but "
        "this tas-bench is installed from a wheel, not run from a checkout" in update.stderr
    )

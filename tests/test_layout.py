"""The package boundaries the design fixes: tas/ and baselines/ import the engine, never each other."""

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def imported_packages(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_method_packages_do_not_import_each_other():
    assert "baselines" not in imported_packages("tas")
    assert "tas" not in imported_packages("baselines")


def test_engine_imports_no_method_package():
    assert not {"tas", "baselines"} & imported_packages("tasbench")


def test_top_level_layout():
    for name in ("benchmarks", "tas", "baselines", "results", "tests", "tox.ini", "noxfile.py", "pyproject.toml"):
        assert (ROOT / name).exists(), name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.strip() for line in readme[:12] if line.startswith("    ")]
    assert len(commands) == 2, "the README opens with two commands: set up + main job, and the tests"
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands[1] in ci, "CI must run the README's test command verbatim"
    # ... and then both regression checks, exactly as nox defines them.
    assert ci[ci.index(commands[1]) + 1 :] == [
        'export PATH="$PWD/.venv/bin:$PATH"',
        "nox --no-venv --no-install -s bench_ci regress",
    ]


def nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("nox.session") for d in node.decorator_list)
    }


def test_tox_wraps_every_nox_session_and_only_those():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    (generative,) = [s for s in tox.sections() if s.startswith("testenv:{")]
    assert set(re.fullmatch(r"testenv:\{(.*)\}", generative).group(1).split(",")) == nox_sessions()
    assert tox["testenv"]["commands"].strip() == "nox -s {envname} -- {posargs}"
    assert set(tox["tox"]["env_list"].replace(" ", "").split(",")) <= nox_sessions()


def test_the_code_is_lint_clean_and_formatted():
    """`ruff check` and `ruff format --check` (as `nox -s lint`), so the test command CI runs enforces both."""
    import subprocess
    import sys

    paths = ["tasbench", "tas", "baselines", "tests", "benchmarks", "noxfile.py"]
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *paths], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]

"""Which tas-bench this is and what it ships: its version, the source tree it runs from (if any), its files.

Shipped files (sweep specs, stored regression results, the paper's numbers, the official TAS configs) are found
through the package directory, never the working directory, so that `tas-bench sweep proxy` works from anywhere and
from a wheel. In the repository, `tasbench/specs` and `tasbench/paper` are symlinks to `benchmarks/` and
`results/paper/`; a wheel carries copies (pyproject.toml's package-data).

    >>> spec_path("proxy")                  # a shipped spec by name
    PosixPath('/home/me/tas-bench/benchmarks/proxy.yaml')
    >>> spec_path("my-sweeps/small.yaml")   # a path stays a path
    PosixPath('my-sweeps/small.yaml')
    >>> version()
    'tas-bench 0.1.0 (git 3a3d263)'
"""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path

from tasbench.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
SPECS_DIR = PACKAGE_DIR / "specs"
REGRESSION_DIR = SPECS_DIR / "regression"  # stored regression results, one file per CPU model
PAPER_CSV = PACKAGE_DIR / "paper" / "paper-results.csv"  # the paper's numbers (results/paper/ in the repository)


def shipped_specs() -> list[str]:
    """The names of the sweep specs tas-bench ships: cifar10, cifar100, imagenet, proxy, regression."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def spec_path(spec: str | Path) -> Path:
    """The sweep spec `spec` names: an existing path as it is; else a shipped spec's name, with or without .yaml."""
    path = Path(spec)
    if path.exists():
        return path
    shipped = SPECS_DIR / f"{path.stem}.yaml"
    if len(path.parts) == 1 and path.suffix in ("", ".yaml") and shipped.is_file():
        return shipped.resolve()
    raise ConfigError(
        f"sweep spec {str(spec)!r} does not exist; give a path to a YAML file or a shipped spec: "
        f"{', '.join(shipped_specs())}"
    )


def source_tree() -> Path | None:
    """The source tree this tas-bench runs from (an editable install, or a checkout on PYTHONPATH); None when it is
    installed from a wheel, where the package's parent directory is site-packages."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "benchmarks").is_dir() else None


def git(*args: str) -> str | None:
    """`git ARGS` in the source tree, if that is the top of a git checkout; its output, or None (no git, no
    checkout, or a package installed into some other repository's virtual environment)."""
    root = _checkout()
    return None if root is None else _run_git(root, *args)


@functools.cache
def _checkout() -> Path | None:
    root = source_tree()
    top = None if root is None else _run_git(root, "rev-parse", "--show-toplevel")
    return root if top is not None and Path(top).resolve() == root else None


def _run_git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def version() -> str:
    """`tas-bench VERSION`, plus the git commit (and whether tracked files changed) when run from a checkout."""
    try:
        line = f"tas-bench {distribution_version('tas-bench')}"
    except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed
        line = "tas-bench (not installed)"
    commit = git("rev-parse", "--short", "HEAD")
    if commit:
        modified = git("status", "--porcelain", "--untracked-files=no")
        line += f" (git {commit}{', modified' if modified else ''})"
    return line

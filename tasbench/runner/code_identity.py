"""Which code computed a run: the package version, the git commit, and a content hash of the sources it ran.

A run's directory is named by the hash of its config, which leaves the code out: a run computed before a change
to `baselines/l1_norm.py` sits in the same directory as the one after it. So every run records the code it ran,
and the runner compares that record with the code installed now (`sweep`, `--dry-run`: "stale" runs).

The source hash covers the installed `.py` files of the engine (`tasbench`) and of the method's own package
(`tas` for tas, `baselines` for uniform, l1 and fpgm), found through the import system, so
it works without git and for a non-editable install. A teacher, like `tas-bench train`, runs the engine only.

    >>> code_identity(code_packages("l1"))     # from a `git archive` export of commit 5af94a7: no git there
    {'version': '0.1.0', 'git_commit': None, 'git_dirty': None, 'source_hash': 'fdc24e7f2a0f'}
    >>> code_packages("tas"), code_packages("uniform"), code_packages(None)
    (('tas', 'tasbench'), ('baselines', 'tasbench'), ('tasbench',))

Everything here is computed once per process: hashing the sources and asking git take a fraction of a second, and
a sweep asks once per run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tasbench.pruner import registered
from tasbench.runner.store import git_state

ENGINE = "tasbench"
DISTRIBUTION = "tas-bench"


def code_packages(method: str | None) -> tuple[str, ...]:
    """The top-level packages whose sources decide the numbers of a run of `method` (None: training only)."""
    packages = {ENGINE}
    if method is not None:
        for ep in registered():
            if ep.name == method:
                packages.add(ep.value.split(":")[0].split(".")[0])
    return tuple(sorted(packages))


def package_directory(name: str) -> Path:
    """Where the package `name` is imported from (the installed files, whatever installed them)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def source_files(directory: Path) -> list[Path]:
    """The `.py` files under `directory`, sorted; symlinked directories (tasbench/specs -> benchmarks/) are not
    followed: they hold data, and benchmarks/ holds test code that cannot change a run."""
    found = []
    for parent, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [Path(parent) / f for f in files if f.endswith(".py")]
    return sorted(found)


@functools.cache
def source_hash(packages: tuple[str, ...]) -> str:
    """First 12 hex chars of the SHA-256 over each package's sources (relative path and bytes of every file)."""
    digest = hashlib.sha256()
    for name in packages:
        directory = package_directory(name)
        for path in source_files(directory):
            digest.update(f"{name}/{path.relative_to(directory).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:12]


@functools.cache
def package_version() -> str | None:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return None


def code_identity(packages: tuple[str, ...]) -> dict:
    """The `code` record of metrics.json: version, git commit and dirty flag (None without git), source hash."""
    commit, dirty = git_state()
    return {
        "version": package_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "source_hash": source_hash(packages),
    }

"""Recomputing a run without losing the old result: its files move into `<run>/superseded-<UTC time>/`.

`--rerun-stale` and `--force` recompute finished runs; the results they replace stay readable beside the new ones
(`tas-bench report` reads `runs/<kind>/<hash>/metrics.json` only, so it never counts them):

    runs/l1/3f2a9c01d4e7/metrics.json ...                        the recomputed run
    runs/l1/3f2a9c01d4e7/superseded-20250301T101500Z/metrics.json  the run computed by the older code

Each file moves by one `os.rename` into a hidden `.superseding-<time>/` directory, `metrics.json` first, then that
directory is renamed to its visible name. A kill at any moment leaves either the finished old run (nothing moved
yet) or a run that reads as not finished and whose move is half done; the next holder of the run's lock
(locks.py) finishes the move (`finish_superseding`) before it does anything else, so a recomputed run never
resumes from the old checkpoint, and no old file is lost.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tasbench.atomic import storage_error

PREFIX = "superseded-"
MOVING = ".superseding-"
FIRST = "metrics.json"  # moved first: from then on the run reads as not finished, and will be computed afresh


def superseded(directory: str | Path) -> list[Path]:
    """The directories of earlier results of this run, oldest first."""
    return sorted(Path(directory).glob(f"{PREFIX}*"))


def supersede(directory: str | Path, suffix: str = "") -> Path | None:
    """Move the results in `directory` aside (call with its lock held); returns where they went, None if empty.
    `suffix` ends the directory's name: `superseded-<time>-damaged/` keeps the files of a damaged run."""
    directory = Path(directory)
    if not _results(directory):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target, n = directory / f"{PREFIX}{stamp}{suffix}", 1
    while target.exists() or (directory / f"{MOVING}{target.name[len(PREFIX) :]}").exists():
        n += 1
        target = directory / f"{PREFIX}{stamp}-{n}{suffix}"
    moving = directory / f"{MOVING}{target.name[len(PREFIX) :]}"
    try:
        moving.mkdir()
    except OSError as e:
        raise storage_error(moving, e) from None
    return _move(directory, moving, target)


def finish_superseding(directory: str | Path) -> list[Path]:
    """Complete moves that a killed process left half done (call with the directory's lock held)."""
    directory = Path(directory)
    return [
        _move(directory, moving, directory / f"{PREFIX}{moving.name[len(MOVING) :]}")
        for moving in sorted(directory.glob(f"{MOVING}*"))
    ]


def _results(directory: Path) -> list[Path]:
    """The run's own files: not earlier superseded results, not hidden files (temporaries, moves in progress)."""
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.iterdir() if not p.name.startswith((PREFIX, "."))),
        key=lambda p: (p.name != FIRST, p.name),
    )


def _move(directory: Path, moving: Path, target: Path) -> Path:
    try:
        for path in _results(directory):
            os.rename(path, moving / path.name)
        os.rename(moving, target)
    except OSError as e:
        raise storage_error(target, e) from None
    return target

"""Per-directory locks, so two processes sharing a results root never train the same teacher or run at once.

A lock is `fcntl.flock` on a small file beside the directory it guards (`runs/tas/.3f2a9c01d4e7.lock` for
`runs/tas/3f2a9c01d4e7/`). The kernel drops a flock when its holder's file is closed, which includes the holder
dying by SIGKILL or the OOM killer, so a lock can never outlive its process and no stale-lock cleanup is needed.
Lock files stay on disk after use: deleting one while another process waits on it would let a third process lock a
new file of the same name, and two holders would then run the same directory.

    >>> with directory_lock(Path("runs/uniform/3f2a9c01d4e7"), wait=False) as held:
    ...     if held:
    ...         ...  # this process alone writes runs/uniform/3f2a9c01d4e7/

flock works on local file systems and on NFSv4 (Linux maps it to a byte-range lock there); on other shared file
systems (e.g. some FUSE mounts) it may lock per node only.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasbench.atomic import storage_error


def lock_path(directory: Path) -> Path:
    """The lock file that guards `directory`: a hidden file beside it, so the run directory holds only results."""
    return directory.parent / f".{directory.name}.lock"


@contextmanager
def directory_lock(directory: str | Path, wait: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of `directory` for the `with` block; yields True once held.

    With `wait=False` it yields False at once when another process holds the lock (the caller does other work and
    comes back later). An unwritable results root is a `StorageError` naming it.
    """
    path = lock_path(Path(directory))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a")
    except OSError as e:
        raise storage_error(path, e) from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

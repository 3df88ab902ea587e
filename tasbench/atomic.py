"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same directory, fsync it, `os.replace` it over the target, fsync the directory.
A crash or SIGKILL at any moment leaves at most a hidden `.<name>.tmp-<pid>` file, never a truncated result; the
next process to take that directory's lock removes such leftovers (`remove_stale_temporaries`).

A write that fails (disk full, read-only file system, no permission) removes its temporary file and raises a
`StorageError` naming the path and the reason, which the CLI prints as one line (exit status 2).
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
from pathlib import Path

import torch

from tasbench.errors import StorageError

TEMPORARY = ".tmp-"  # temporary files are named .<name>.tmp-<pid of the writer>


def storage_error(path: str | Path, e: OSError) -> StorageError:
    """`e` (from writing `path`) as one line: the path, the errno's meaning and name, and what to do."""
    code = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
    if e.errno in (errno.EEXIST, errno.ENOTDIR):  # a file where a directory must be: no space to free
        blocker = file_in_the_way(Path(path).parent)
        if blocker is not None:
            return StorageError(
                f"cannot write {str(path)!r}: {str(blocker)!r} is a file, not a directory ({code}); "
                "nothing was written; move that file away or choose another output path"
            )
    if e.filename and Path(e.filename) in Path(path).parents:  # it failed at creating a directory on the way
        path = e.filename
    reason = os.strerror(e.errno) if e.errno else str(e)
    return StorageError(
        f"cannot write {str(path)!r}: {reason} ({code}); nothing was half-written; free space or "
        f"make the results directory writable (or choose another --out), then run the command "
        f"again"
    )


def file_in_the_way(directory: str | Path) -> Path | None:
    """The file (if any) that stands where `directory` or one of its parents must be a directory."""
    return next((p for p in [*reversed(Path(directory).parents), Path(directory)] if p.is_file()), None)


def check_output_dir(directory: str | Path, flag: str, given: str | Path | None = None) -> None:
    """Stop before any work, not at the first write hours later, when `directory` cannot be a directory (`given`:
    the path the user named, when it is a file to be written into `directory`)."""
    blocker, given = file_in_the_way(directory), Path(given or directory)
    if blocker is not None:
        where = "is" if blocker == given else f"lies under {str(blocker)!r}, which is"
        raise StorageError(f"{flag} {str(given)!r} {where} a file, not a directory; move it away or give another path")


def atomic_write(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TEMPORARY}{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # e.g. the file system went read-only: then nothing could be written either
                pass
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise storage_error(path, e) from None


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files in `directory` whose writer is gone (killed mid-write); returns them.

    Called by the holder of the directory's lock (locks.py), so no live process of this sweep is writing there;
    the pid check also spares a live process that writes without the lock (a DDP rank's checkpoint).
    """
    removed = []
    for path in Path(directory).glob(f".*{TEMPORARY}*"):
        pid = path.name.rpartition(TEMPORARY)[2]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def write_json(path: str | Path, obj: object) -> None:
    """`obj` as strict JSON, which every parser reads: a NaN or infinite number (a diverged run's loss) is null."""
    atomic_write(path, (json.dumps(finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def finite(obj: object) -> object:
    """`obj` with every non-finite float (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, text.encode())


def save_torch(path: str | Path, obj: object) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getvalue())

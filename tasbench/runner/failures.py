"""A run that failed: its error and traceback in `<run>/error.json`, until the run later succeeds.

A sweep goes on past a failed run (unless `--fail-fast`) and ends with one summary line per failure; the dry run
shows the recorded failure beside the run. The file is written atomically, and deleted once `metrics.json` is in
place, so a run directory holds a failure only while it has no result.

    >>> record_failure(Path("runs/l1/3f2a9c01d4e7"), ZeroDivisionError("division by zero"), "run")
    >>> summary(read_failure(Path("runs/l1/3f2a9c01d4e7")))
    'ZeroDivisionError: division by zero'
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from tasbench.atomic import write_json
from tasbench.errors import ConfigError
from tasbench.runner.run_files import DamagedRunFile, read_run_file

ERROR_FILE = "error.json"


def record_failure(directory: Path, error: BaseException, stage: str) -> None:
    """Write `directory/error.json`: the error's type, message and traceback, the stage, when and in which process."""
    write_json(
        directory / ERROR_FILE,
        {
            "error": type(error).__name__,
            "message": str(error),
            "bad_input": isinstance(error, ConfigError),
            "traceback": "".join(traceback.format_exception(error)),
            "stage": stage,
            "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def read_failure(directory: Path) -> dict | None:
    """The recorded failure of `directory`, or None (none recorded, or the run has since finished)."""
    path = directory / ERROR_FILE
    if not path.exists() or (directory / "metrics.json").exists():
        return None
    try:
        return read_run_file(path)
    except DamagedRunFile as e:  # still a failure, of unknown kind
        return {"error": "unknown", "message": str(e)}


def clear_failure(directory: Path) -> None:
    (directory / ERROR_FILE).unlink(missing_ok=True)


def summary(failure: dict) -> str:
    """One line: the error's type and the first line of its message."""
    message = (str(failure.get("message", "")).strip().splitlines() or [""])[0]
    return f"{failure.get('error', 'error')}: {message}"[:300]

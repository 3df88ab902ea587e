"""Where a run stands, read from its directory: done, partial or to do; failed; computed by other code ("stale").

A run is stale when the code recorded in its files is not the code installed now (code_identity.py), or when the
teacher it learned from is not the one in place now:

- done: metrics.json's `code.source_hash` differs from the current hash (or is missing: computed before runs
  recorded their code), or the run was resumed across a code change (params.json, written when the run started,
  records another hash than metrics.json);
- partial (a checkpoint, no metrics.json): params.json's hash differs; resuming would mix two versions of the code;
- a pruning run whose teacher is stale, or whose teacher was retrained after it (the SHA-256 of the teacher's
  model.pt differs from the one the run recorded): its pruning and distillation saw other weights.

A stale teacher is stale for the same reasons; `--rerun-stale` retrains it, and so every run that used it.

A run or teacher whose metrics.json or params.json is damaged or foreign (run_files.py) is not done: it is to do,
`damaged` says which file and why, and the runner moves its files aside before it computes it afresh.

    >>> run_state(cfg, "runs")
    State(status='done', stale='computed by other code (sources 1a2b3c4d5e6f, now 5c0e1f2a9b7d)', error='')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from tasbench.runner.code_identity import code_packages, source_hash
from tasbench.runner.experiment import RunConfig
from tasbench.runner.failures import read_failure, summary
from tasbench.runner.run_files import RUN_METRICS, TEACHER_METRICS, DamagedRunFile, read_results
from tasbench.runner.store import file_digest
from tasbench.runner.supersede import MOVING


@dataclass(frozen=True)
class State:
    status: str  # "done", "partial" (resumes), "todo"
    stale: str = ""  # why its results come from other code; "" if they do not (or there are none yet)
    error: str = ""  # the last attempt's failure (error.json), one line; "" if none is recorded
    damaged: str = ""  # its damaged file and why ("metrics.json: not JSON (...)"); it is then to do, afresh

    @property
    def label(self) -> str:
        """For the plan: 'done', 'done, stale', 'partial, failed', 'todo, damaged', ..."""
        return ", ".join(
            [self.status]
            + ["stale"] * bool(self.stale)
            + ["failed"] * bool(self.error)
            + ["damaged"] * bool(self.damaged)
        )


def teacher_state(cfg: RunConfig, root: str | Path) -> State:
    return directory_state(
        cfg.teacher_directory(root), code_packages(None), progress_files=("checkpoint.pt",), schema=TEACHER_METRICS
    )


def run_state(cfg: RunConfig, root: str | Path) -> State:
    state = directory_state(
        cfg.directory(root),
        code_packages(cfg.method),
        progress_files=("checkpoint.pt", "pruned.pt", "tas-search.pt"),
        schema=RUN_METRICS,
    )
    if state.status != "done" or state.stale:
        return state
    teacher = teacher_state(cfg, root)
    if teacher.status != "done":  # deleted since: nothing to compare with
        return state
    if teacher.stale:
        return State(state.status, f"its teacher is stale ({teacher.stale})", state.error)
    used = read_results(cfg.directory(root), RUN_METRICS).metrics.get("teacher_sha256")  # read fine just above
    if used != teacher_digest(cfg.teacher_directory(root)):
        return State(state.status, "its teacher was retrained after it ran", state.error)
    return state


def directory_state(out: Path, packages: tuple[str, ...], progress_files: tuple[str, ...], schema: dict) -> State:
    """The state of one run or teacher directory whose results depend on the sources of `packages` (`schema`: the
    keys its metrics.json must hold)."""
    failure = read_failure(out)
    error = summary(failure) if failure else ""
    try:
        files = read_results(out, schema)
    except DamagedRunFile as e:
        return State("todo", "", error, damaged=e.short)
    current = source_hash(packages)
    started = _recorded(files.params) if files.params else current  # none yet: nothing says it started elsewhere
    if files.metrics is not None:
        finished = _recorded(files.metrics)
        if finished is None:
            return State("done", "no code record (computed before runs recorded their code)", error)
        if finished != current:
            return State("done", f"computed by other code (sources {finished}, now {current})", error)
        if started != finished:
            return State("done", f"resumed across a code change (started with sources {started})", error)
        return State("done", "", error)
    if any(out.glob(f"{MOVING}*")):  # a recompute's move of the old results, cut short: it starts afresh
        return State("todo", "", error)
    if any((out / name).exists() for name in progress_files):
        if started != current:
            return State("partial", f"started by other code (sources {started}, now {current})", error)
        return State("partial", "", error)
    return State("todo", "", error)


def teacher_digest(directory: Path) -> str | None:
    """SHA-256 of a teacher's model.pt (None if it has none), read once per file version per process."""
    path = directory / "model.pt"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int, size: int) -> str:  # the stat fields key the cache: a new file is hashed anew
    return file_digest(path)


def _recorded(record: dict) -> str | None:
    code = record.get("code")
    return code.get("source_hash") if isinstance(code, dict) else None

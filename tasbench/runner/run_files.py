"""Reading a run directory's JSON files (metrics.json, params.json, error.json): every reader goes through here.

A results file can be damaged (a disk that filled up, a copy cut short, an editor that saved it in another
encoding) or foreign (another tool's metrics.json under a results root). `read_run_file` checks what it reads
and raises a `DamagedRunFile` that names the path and what is wrong, so no reader dies on a TypeError or KeyError:

    >>> read_run_file(Path("runs/l1/3f2a9c01d4e7/metrics.json"), RUN_METRICS)
    DamagedRunFile: 'runs/l1/3f2a9c01d4e7/metrics.json' is damaged: truncated (it ends mid-value at byte 812)

What each reader does with one:
- the runner (sweep, its dry run, `tas-bench train`): a damaged run or teacher is not finished; `finished` moves
  its files aside into `superseded-<time>-damaged/` (supersede.py: kept, never deleted), warns, and the run is
  computed afresh. The dry run says so beside the run.
- `report`: the run is skipped with a warning naming the file, and the report says how many were skipped.

Non-finite numbers (a diverged run's loss) are written as null (atomic.write_json) with `"diverged": true` in the
run's metrics; a NaN or Infinity in a file written before is read as null too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tasbench.arch import Arch
from tasbench.errors import ConfigError, warn
from tasbench.runner.supersede import supersede
from tasbench.untrusted import RUN_JSON, read_bytes

METRICS, PARAMS_FILE = "metrics.json", "params.json"
MISSING = "missing"
DAMAGED = "-damaged"  # the suffix of the superseded-<time> directory that keeps a damaged run's files
NUMBER = (int, float)
TEXT_OR_NONE = (str, type(None))

# The keys each kind of file must hold, and their types: what the readers of that file use.
PARAMS = {"config": dict}
TEACHER_METRICS = {"top1": NUMBER, "top5": NUMBER, "train_seconds": NUMBER, "wall_seconds": NUMBER, "environment": dict}
RUN_METRICS = {
    "dataset": str,
    "network": str,
    "label": str,
    "method": str,
    "recipe": str,
    "hash": str,
    "teacher_hash": str,
    "ratio": NUMBER,
    "seed": int,
    "top1": NUMBER,
    "top5": NUMBER,
    "unpruned_top1": NUMBER,
    "acc_drop": NUMBER,
    "macs": NUMBER,
    "unpruned_macs": NUMBER,
    "params": NUMBER,
    "flop_reduction_pct": NUMBER,
    "timing": dict,
    "environment": dict,
    "environment.device": str,
    "environment.torch": str,
    "environment.git_commit": TEXT_OR_NONE,
}


class DamagedRunFile(ConfigError):
    """A run file that cannot be used: `problem` says why ("not JSON (...)", "lacks 'network'"); `foreign` is True
    when it is valid JSON but not what tas-bench writes there (another tool's file)."""

    def __init__(self, path: str | Path, problem: str, foreign: bool = False) -> None:
        self.path, self.problem, self.foreign = Path(path), problem, foreign
        what = "is not a tas-bench run file: " if foreign else "is damaged: " if problem != MISSING else "is "
        super().__init__(f"{str(path)!r} {what}{problem}")

    @property
    def short(self) -> str:
        """'metrics.json: not JSON (...)': for a line that already names the run's directory."""
        return f"{self.path.name}: {self.problem}"


def read_run_file(path: str | Path, schema: dict | None = None) -> dict:
    """The JSON object in `path`, with the keys and types of `schema` (dotted keys look inside nested objects)."""
    path = Path(path)
    if not path.exists():
        raise DamagedRunFile(path, MISSING)
    try:
        raw = read_bytes(path, RUN_JSON)  # a regular file, of at most its kind's size limit
    except ConfigError as e:  # "run file 'p' is a FIFO (named pipe), not a JSON file" -> "it is a FIFO (named ..."
        raise DamagedRunFile(path, "it " + str(e).partition(f"{str(path)!r} ")[2]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DamagedRunFile(path, f"not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise DamagedRunFile(path, f"empty ({len(raw)} bytes)")
    try:
        value = json.loads(text, parse_constant=lambda name: None)  # NaN, Infinity (older diverged runs): null
    except json.JSONDecodeError as e:
        # The text ran out before the value was complete: a copy or a write cut short, not a file of other content.
        if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):
            raise DamagedRunFile(path, f"truncated (it ends mid-value at byte {len(raw)})") from None
        raise DamagedRunFile(path, f"not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(value, dict):
        raise DamagedRunFile(path, f"holds a JSON {_json_type(value)}, expected an object", foreign=True)
    return validate(path, value, schema or {})


def validate(path: str | Path, value: dict, schema: dict) -> dict:
    """`value` (read from `path`) if it has every key of `schema` with its type, else a foreign DamagedRunFile."""
    for key, kind in schema.items():
        node: object = value
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise DamagedRunFile(path, f"lacks {key!r}", foreign=True)
            node = node[part]
        if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):
            names = " or ".join(
                dict.fromkeys(
                    _A[_json_type(None if t is type(None) else t())]
                    for t in (kind if isinstance(kind, tuple) else (kind,))
                )
            )
            raise DamagedRunFile(path, f"{key!r} is {node!r}, expected {names}", foreign=True)
    return value


def recorded_arch(path: str | Path, metrics: dict) -> Arch | None:
    """The pruned net's `Arch` that run metrics `metrics` (read from `path`) record under "arch" (not a required
    key: None for a run written before metrics.json recorded it); one that does not rebuild is a foreign
    DamagedRunFile. `flops.macs(recorded_arch(path, m)) == m["macs"]`."""
    if "arch" not in metrics:
        return None
    try:
        return Arch.from_dict(metrics["arch"])
    except (ConfigError, TypeError) as e:  # TypeError: a field of the wrong JSON type that the dataclass rejects
        raise DamagedRunFile(path, f"'arch' does not rebuild a network ({e})", foreign=True) from None


_A = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "number": "a number",
    "null": "null",
}


def _json_type(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class RunFiles:
    params: dict | None  # None: no params.json
    metrics: dict | None  # None: no metrics.json (the run is not finished)


def read_results(out: Path, schema: dict) -> RunFiles:
    """A run (or teacher) directory's params.json and metrics.json, each checked (`schema`: its metrics' keys); a
    `DamagedRunFile` if either is damaged or foreign, or if a finished run lacks params.json (written when every
    run starts: without it, nothing says which config its metrics are of)."""
    params, metrics = out / PARAMS_FILE, out / METRICS
    done = metrics.exists()
    return RunFiles(
        read_run_file(params, PARAMS) if done or params.exists() else None,
        read_run_file(metrics, schema) if done else None,
    )


def finished(out: Path, schema: dict) -> dict | None:
    """The metrics of a finished run directory, or None: not finished, or damaged. Call with its lock held: a
    damaged run's files move aside (kept) with a warning, so that it is computed afresh from nothing."""
    try:
        return read_results(out, schema).metrics
    except DamagedRunFile as e:
        moved = supersede(out, DAMAGED)
        warn(f"{e}; moved the run's files to {str(moved)!r} and computing it afresh")
        return None


def non_finite(values: object) -> bool:
    """Whether any number in `values` (nested dicts and lists) is NaN or infinite."""
    if isinstance(values, dict):
        return any(non_finite(v) for v in values.values())
    if isinstance(values, (list, tuple)):
        return any(non_finite(v) for v in values)
    return isinstance(values, float) and not math.isfinite(values)


def divergence(out: Path, result: dict, history: list[dict], teacher: dict | None = None) -> dict:
    """`{"diverged": bool}` for a run's metrics: True if its training log, its final numbers or its teacher's went
    non-finite (they are written as null); a diverged run says so in a warning."""
    own = non_finite(history) or non_finite(result)
    diverged = own or bool(teacher and teacher.get("diverged"))
    if diverged:
        why = "its loss went non-finite" if own else "its teacher diverged"
        warn(
            f"the run in {str(out)!r} diverged ({why}); its metrics.json records null for the non-finite numbers "
            f'and "diverged": true; a lower learning rate may help'
        )
    return {"diverged": diverged}

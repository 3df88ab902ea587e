"""Run bookkeeping in the ShrinkBench style: a run is a directory named by the hash of its resolved config.

    runs/<kind>/<hash>/params.json    the full resolved config (and its hash)
                       metrics.json   final metrics + git commit, torch/CUDA versions, device (written last)
                       log.csv        one row per epoch
                       checkpoint.pt  resumable training state, replaced atomically every epoch
                       model.pt       the trained net (arch + weights)

`config_hash` is the first 12 hex chars of the SHA-256 of the config's canonical JSON (sorted keys, no spaces), so
the same config always maps to the same directory: a finished run is found and skipped, an interrupted one resumed.
Where results go (the output root) is not part of the config.

The torch thread count is not hashed either, yet it changes a CPU run's float sums (how a reduction is split among
threads). So it is fixed when a run starts, recorded in its params.json (`start_run`), and every resume computes with
the recorded count (`torch_threads`), whatever `--workers`/`--threads` the resuming process has: a run's numbers are a
pure function of its hashed config and its recorded thread count. A finished run is read, never recomputed, so a
later sweep with another count uses it as it is.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from tasbench.atomic import write_json, write_text
from tasbench.bounds import MAX_THREADS
from tasbench.compiled import compiles
from tasbench.errors import ConfigError
from tasbench.installation import git
from tasbench.runner.gpus import physical_gpu
from tasbench.runner.run_files import PARAMS, read_run_file


def canonical_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: dict) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


def run_dir(root: str | Path, kind: str, config: dict) -> Path:
    """`root/<kind>/<hash>`; `kind` ("train" or a method name) must be one plain name, so no config can place a run
    outside `root` (the hash is hex by construction)."""
    return Path(root) / path_component(kind, "run kind") / config_hash(config)


_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def path_component(name: object, what: str) -> str:
    """`name` if it is safe as one file or directory name (letters, digits, '.', '_', '-'; not starting with '.'),
    else a ConfigError: a name read from a config or a results file never becomes `..`, `/etc` or `a/../../b`."""
    if not (isinstance(name, str) and _COMPONENT.fullmatch(name)):
        raise ConfigError(
            f"{what} {name!r} cannot name a file or directory: allowed are letters, digits, '.', '_' "
            f"and '-', not starting with '.'"
        )
    return name


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: how a config refers to an input file (weights, teacher) by content, not by path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:  # in 1 MiB pieces: a checkpoint may weigh gigabytes (hashlib.file_digest is 3.11+)
        for piece in iter(lambda: f.read(2**20), b""):
            digest.update(piece)
    return digest.hexdigest()


def write_log_csv(path: str | Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def start_run(out: Path, params: dict, started: bool) -> int:
    """Write `params` and this process's torch thread count to `out/params.json` unless the run `started` already
    (its params.json then stays as it began); returns the thread count the run computes with, the recorded one."""
    if not started:
        write_json(out / "params.json", {**params, "threads": torch.get_num_threads()})
    return recorded_threads(out)


def recorded_threads(out: Path) -> int:
    """The torch thread count params.json records for run directory `out` (runs that began before it was recorded
    there have it under `environment`; a teacher of that time nowhere: this process's count)."""
    params = read_run_file(out / "params.json", PARAMS)
    threads = params.get("threads", (params.get("environment") or {}).get("threads"))
    ok = isinstance(threads, int) and not isinstance(threads, bool) and 1 <= threads <= MAX_THREADS
    return threads if ok else torch.get_num_threads()


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """`torch.set_num_threads(threads)` for the block; the caller's count is restored after it (a worker process
    runs many runs, each with its own recorded count)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def environment(device: torch.device) -> dict:
    """What produced a result: code version, library versions, hardware."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "gpu": physical_gpu(device),  # which GPU of the machine (CUDA_VISIBLE_DEVICES' name); None on a CPU
        "compiled": compiles(device),  # training ran through torch.compile (--compile, CUDA only)
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def cpu_name() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it ("AMD EPYC", "Intel(R) Xeon(R) Processor")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def cpu_slug(name: str) -> str:
    """A CPU model as a file name: "Intel(R) Xeon(R) Processor" -> intel-xeon-processor (per-CPU stored results)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().replace("(r)", "").replace("(tm)", "")).strip("-")
    return slug or "unknown-cpu"


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """(commit, whether tracked files differ from it) of the checkout this package runs from; (None, None) without
    git or outside a checkout (an installed wheel). Asked once per process."""
    status = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD"), None if status is None else bool(status)

"""Micro-benchmarks of hot paths, registered by name like pruners: `tas-bench bench NAME [options]`.

A benchmark adds its options to an argparse parser and returns one JSON-ready dict. Methods register theirs under
the entry-point group `tas_bench.benchmarks` (TAS registers `search-step`), so the engine never imports them; the
CLI loads them only when `tas-bench bench` runs, and adds `--no-progress` (accepted, as by every long command):

    $ tas-bench bench search-step --network resnet56 --batch-size 64 --steps 10
    {"benchmark": "search-step", "seconds_per_step": 0.9..., ...}

Wall-clock timings on shared machines are noisy: `time_interleaved` times a step and its references in turns and
reports medians, so that ratios between them are what a run should be judged by.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import torch

ENTRY_POINT_GROUP = "tas_bench.benchmarks"


@dataclass(frozen=True)
class Benchmark:
    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], dict]
    summary: str = ""


def benchmarks() -> dict[str, Benchmark]:
    """Every registered benchmark by name (importing the packages that define them)."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        bench = ep.load()
        if not isinstance(bench, Benchmark) or bench.name != ep.name:
            raise TypeError(f"entry point {ep.value} must be a Benchmark named {ep.name!r}")
        found[ep.name] = bench
    return dict(sorted(found.items()))


def time_interleaved(
    steps: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, dict]:
    """Time several step functions in turns (a, b, a, b, ...), so machine load drifts hit all alike.

    Per name: the median, mean and fastest of `repeats` timed calls, after `warmup` untimed calls of each.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            _sync(device)
            began = time.perf_counter()
            step()
            _sync(device)
            seconds[name].append(time.perf_counter() - began)
    return {
        name: {
            "seconds_per_step": statistics.median(s),
            "mean_seconds": statistics.fmean(s),
            "min_seconds": min(s),
            "steps": repeats,
            "warmup": warmup,
        }
        for name, s in seconds.items()
    }


def peak_memory_mib(step: Callable[[], object], device: torch.device) -> dict:
    """Peak memory while `step` runs once: on a GPU the allocator's peak; on a CPU (Linux) the process's peak
    resident set during the step, and its growth over the resident set just before it (what the step made newly
    resident; pages the allocator already held resident are not growth)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return {"peak_cuda_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    try:
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets the peak resident set (VmHWM) to the current one
            f.write("5")
        before = _proc_status_mib("VmRSS")
    except OSError:  # not Linux: no figure rather than a wrong one
        return {"peak_rss_mib": None, "peak_rss_growth_mib": None}
    step()
    peak = _proc_status_mib("VmHWM")
    # The kernel's RSS counters are approximate (batched per thread): a step that needs nothing may read -0.2 MiB.
    return {"peak_rss_mib": peak, "peak_rss_growth_mib": max(0.0, peak - before)}


def _proc_status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise OSError(f"/proc/self/status has no {field}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Micro-benchmarks of hot paths, registered by name like pruners: `tas-bench bench NAME [options]`.

A benchmark adds its options to an argparse parser and returns one JSON-ready dict. Methods register theirs under
the entry-point group `tas_bench.benchmarks` (TAS registers `search-step`), so the engine never imports them:

    $ tas-bench bench search-step --network resnet56 --batch-size 64 --steps 10
    {"benchmark": "search-step", "seconds_per_step": 0.9..., ...}

Wall-clock timings on shared machines are noisy: `time_steps` reports the median of many timed steps after warm-up.
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


def time_steps(step: Callable[[], object], steps: int, warmup: int, device: torch.device) -> dict:
    """Run `step` warmup + steps times; the median, mean and fastest seconds of the timed steps."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(steps):
        _sync(device)
        began = time.perf_counter()
        step()
        _sync(device)
        seconds.append(time.perf_counter() - began)
    return {"seconds_per_step": statistics.median(seconds), "mean_seconds": statistics.fmean(seconds),
            "min_seconds": min(seconds), "steps": steps, "warmup": warmup}  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

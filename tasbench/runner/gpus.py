"""Which GPU each local worker process uses: `--device cuda` spreads a sweep's workers over every visible GPU.

A worker is pinned to one GPU by setting CUDA_VISIBLE_DEVICES in it before CUDA initialises there (torch reads it
once, at the first CUDA call), so inside the worker that GPU is `cuda` (= `cuda:0`) and no run can touch another.
Worker i gets GPU i mod N, so `--runs-per-gpu k` puts k workers on each of the N GPUs (small CIFAR ResNets leave a
large GPU mostly idle: several runs at once use it better).

    >>> gpu_slots(["0", "1"], runs_per_gpu=2)        # 4 workers on 2 GPUs
    ['0', '1', '0', '1']
    >>> physical_gpu(torch.device("cuda"))           # in a worker pinned to GPU 3 of the box
    '3'

The GPUs are named as CUDA_VISIBLE_DEVICES names them (indices, or UUIDs where the scheduler gives those); with
none set, the indices 0..N-1 of what torch sees.
"""

from __future__ import annotations

import os

from tasbench.errors import ConfigError

VISIBLE = "CUDA_VISIBLE_DEVICES"


def visible_gpus(count: int | None = None) -> list[str]:
    """The GPUs this process may use, by name; `count` is torch's device count (asked for when not given)."""
    names = [n.strip() for n in os.environ.get(VISIBLE, "").split(",") if n.strip()] if VISIBLE in os.environ else None
    if count is None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if names is None:
        return [str(i) for i in range(count)]
    return names[:count]


def gpu_slots(gpus: list[str], runs_per_gpu: int) -> list[str]:
    """The GPU of each of `len(gpus) * runs_per_gpu` workers, worker i on GPU i mod N: the first N workers (the
    ones a small sweep starts) land on N different GPUs."""
    if not gpus:
        raise ConfigError("--device cuda spreads the workers over the visible GPUs, but torch sees none")
    return [gpus[i % len(gpus)] for i in range(len(gpus) * runs_per_gpu)]


def pin_gpu(slot: str) -> None:
    """Make `slot` this process's only GPU; before anything initialised CUDA here (a worker's first act)."""
    os.environ[VISIBLE] = slot


def physical_gpu(device) -> str | None:
    """The GPU a CUDA `device` of this process is on the machine, as CUDA_VISIBLE_DEVICES names it (None on a CPU):
    what a run's metrics.json records, so that a slow or faulty card can be traced."""
    if device.type != "cuda":
        return None
    index = device.index or 0
    names = [n.strip() for n in os.environ.get(VISIBLE, "").split(",") if n.strip()]
    return names[index] if index < len(names) else str(index)


def spreads(device: str) -> bool:
    """Whether a sweep on `device` spreads its local workers over the GPUs: `cuda` does, and `auto` where torch
    sees a GPU; `cuda:N` keeps every worker on GPU N, as asked."""
    if device == "cuda":
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def worker_gpus(device: str, workers: int, runs_per_gpu: int, count: int | None = None) -> list[str] | None:
    """The GPU of each of a local sweep's `workers` processes (None: no pinning, the device is used as named);
    `count` is torch's device count, asked for when not given (a test gives a fake one)."""
    if not spreads(device):
        return None
    slots = gpu_slots(visible_gpus(count), runs_per_gpu)
    return [slots[i % len(slots)] for i in range(workers)]


def default_workers(device: str, runs_per_gpu: int, count: int | None = None) -> int:
    """`--workers` left out: the GPUs times `--runs-per-gpu` where the sweep spreads over GPUs, else 1."""
    return len(visible_gpus(count)) * runs_per_gpu if spreads(device) else 1

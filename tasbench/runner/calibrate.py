"""This machine's training speed, for the dry run's time estimate: seconds per multiply-accumulate (MAC).

Timed on a few training steps (forward, backward, SGD step) of the nets a sweep trains, on its device and with its
torch threads per worker, after one warm-up step, and as many at once as the sweep has workers (one Python thread
each; torch releases the GIL in its kernels): a worker's speed depends on what runs beside it. On 2 idle cores
two trainings at once each run about as fast as one alone; beside other users' jobs they do not (here, at a load
average of ~4, one training alone timed 4.4e-11 s/MAC and each teacher of the 2-worker sweep that followed trained
at 9.9e-11). Each net is timed for at least `min_seconds` (a few steps): a calibration of the proxy spec's 4 nets
took 5.7 s on 2 idle cores. On a CPU the batch is
capped at `CPU_STEP_MACS` per step (ResNet-20 keeps its 128, ResNet-110 gets 26, ResNet-50 8): a full batch of a
deep net would take many seconds per step, and from a few dozen images on, the time per MAC of a CPU hardly
depends on the batch; a GPU is timed at the real batch size, where it matters.

    >>> rate = train_rate(resnet20(), batch=128, device=torch.device("cpu"), threads=1, parallel=2)
    >>> rate, rate * 3 * 40_813_194 * 128     # 2 idle cores: s/MAC, and seconds per step at batch 128, per worker
    (2.8e-11, 0.44)
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from tasbench.arch import Arch
from tasbench.flops import macs
from tasbench.resnet import build_resnet

CPU_STEP_MACS = 2e10  # about a second of one CPU core
IMAGE_SIZE = {"cifar": 32, "imagenet": 224}


def train_rate(
    arch: Arch,
    batch: int,
    device: torch.device,
    threads: int,
    parallel: int = 1,
    min_seconds: float = 0.25,
    max_steps: int = 4,
) -> float:
    """Seconds per MAC of training `arch` (one training image = 3 forward MACs) at `batch` on `device`, in each of
    `parallel` trainings running at once (the mean)."""
    if device.type == "cpu":
        batch = min(batch, max(8, int(CPU_STEP_MACS / (3 * macs(arch)))))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    race = _Race(threading.Barrier(parallel), parallel)
    try:
        with ThreadPoolExecutor(parallel) as pool:
            times = list(pool.map(lambda _: _steps(arch, batch, device, race, min_seconds, max_steps), range(parallel)))
    finally:
        torch.set_num_threads(previous)
    return sum(seconds / steps for seconds, steps in times) / len(times) / (batch * 3 * macs(arch))


class _Race:
    """The trainings start timing together, and each keeps training until all have timed enough: one that stopped
    early would leave the others a less crowded machine."""

    def __init__(self, start: threading.Barrier, running: int) -> None:
        self.start, self.running = start, running
        self.lock, self.over = threading.Lock(), threading.Event()

    def timed_enough(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0:
                self.over.set()


def _steps(
    arch: Arch, batch: int, device: torch.device, race: _Race, min_seconds: float, max_steps: int
) -> tuple[float, int]:
    """(seconds, steps) of training timed after one warm-up step (allocations, kernel selection)."""
    generator = torch.Generator(device=device).manual_seed(0)
    model = build_resnet(arch).to(device, memory_format=torch.channels_last)
    size = IMAGE_SIZE[arch.family]
    images = torch.randn(batch, 3, size, size, device=device, generator=generator)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, arch.num_classes, (batch,), device=device, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> float:
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):  # as train.py
            loss = F.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - began

    step()
    race.start.wait()
    steps, elapsed, timing = 0, 0.0, True
    while timing or not race.over.is_set():
        seconds = step()
        if timing:
            steps, elapsed = steps + 1, elapsed + seconds
            if elapsed >= min_seconds or steps == max_steps:
                timing = False
                race.timed_enough()
    return elapsed, steps

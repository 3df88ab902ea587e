"""This machine's training speed, for the dry run's time estimate: seconds per multiply-accumulate (MAC).

Timed on a few training steps (forward, backward, SGD step) of the nets a sweep trains, on its device and with its
torch threads per worker, after one warm-up step. Each net is timed for at least `min_seconds` (a few steps), so
a whole calibration takes a couple of seconds. On a CPU the batch is capped at `CPU_STEP_MACS` per step (ResNet-20
keeps its 128, ResNet-110 gets 26, ResNet-50 8): a full batch of a deep net would take many seconds per step, and
from a few dozen images on the time per MAC of a CPU hardly depends on the batch; a GPU is timed at the real batch
size, where it matters.

    >>> rate = train_rate(resnet20(), batch=128, device=torch.device("cpu"), threads=1)
    >>> rate * 3 * 40_813_194 * 128       # seconds per training step of ResNet-20 at batch 128
    0.52...
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from tasbench.arch import Arch
from tasbench.flops import macs
from tasbench.resnet import build_resnet

CPU_STEP_MACS = 2e10  # about a second of one CPU core
IMAGE_SIZE = {"cifar": 32, "imagenet": 224}


def train_rate(arch: Arch, batch: int, device: torch.device, threads: int, min_seconds: float = 0.25,
               max_steps: int = 4) -> float:  # fmt: skip
    """Seconds per MAC of training `arch` (one training image = 3 forward MACs) at `batch` on `device`."""
    if device.type == "cpu":
        batch = min(batch, max(8, int(CPU_STEP_MACS / (3 * macs(arch)))))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_resnet(arch).to(device, memory_format=torch.channels_last)
            size = IMAGE_SIZE[arch.family]
            images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, arch.num_classes, (batch,), device=device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        steps, elapsed = 0, 0.0
        for i in range(max_steps + 1):
            began = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):  # as train.py
                loss = F.cross_entropy(model(images).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first step is a warm-up (allocations, kernel selection)
                steps, elapsed = steps + 1, elapsed + time.perf_counter() - began
                if elapsed >= min_seconds:
                    break
    finally:
        torch.set_num_threads(previous)
    return elapsed / (steps * batch * 3 * macs(arch))

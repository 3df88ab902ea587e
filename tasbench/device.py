"""The one reading of a `--device` value (every command, as argparse `type=`; the sweep's workers; torchrun ranks).

    >>> parse_device("auto")     # device(type='cuda') where torch sees a GPU, else device(type='cpu')
    >>> parse_device("cuda:1")   # on a 1-GPU machine: ConfigError "device 'cuda:1' asked for, but this machine has
    ...                          # 1 CUDA GPU (cuda:0); allowed: auto, cpu, cuda, cuda:0"

torch is imported only when a device is resolved, so that a parser can name the allowed values without it.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from tasbench.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_HELP = "auto (a CUDA GPU when torch sees one, else the CPU; the default), cpu, cuda, cuda:N"
_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(name: str) -> str:
    """`name` if it is a device name tas-bench accepts, whatever this machine has: auto, cpu, cuda, cuda:N."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N (N: a GPU index)")
    return name


def parse_device(name: str) -> torch.device:
    """The device `name` stands for on this machine; a CUDA device this machine lacks is a ConfigError."""
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"device {name!r} asked for, but this machine has no CUDA GPU (torch "
                f"{torch.__version__} sees none); use --device cpu or auto"
            )
        if device.index is not None and device.index >= count:
            indices = ", ".join(f"cuda:{i}" for i in range(count))
            gpus = f"{count} CUDA GPU{'s' if count > 1 else ''}"
            raise ConfigError(
                f"device {name!r} asked for, but this machine has {gpus} ({indices}); allowed: auto, "
                f"cpu, cuda, {indices}"
            )
    return device


def device_flag(name: str) -> torch.device:
    """`--device` as an argparse `type=`: the device on this machine (`train`, `prune`, `bench`), checked as the
    command line is read, so a machine without the GPU asked for says so before anything starts."""
    try:
        return parse_device(name)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def device_name_flag(name: str) -> str:
    """`--device` of `sweep` as an argparse `type=`: a valid name, resolved where each run executes (a Ray node may
    have the GPU that the machine starting the sweep lacks)."""
    try:
        return check_device_name(name)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None

"""`--compile`: the training step's forward pass through `torch.compile` on CUDA, with a fallback to eager.

Off by default: the speed-up has not been measured here yet (`tas-bench bench gpu` times eager and compiled training
steps side by side on a GPU; turn it on where it pays off). On a CPU it stays eager. A compiled run's numbers are
not bit-identical to an eager one's (kernels fuse, sums reorder), so a run's metrics.json records whether it was
compiled (`environment.compiled`). The switch is the environment variable TAS_BENCH_COMPILE=1, which `--compile`
sets, so that a sweep's worker processes, Ray tasks and Slurm jobs inherit it.

    >>> forward = compiled(model, torch.device("cuda"))   # torch.compile(model), or `model` itself
    >>> logits = forward(images)                          # a compile error: one warning, then eager for good
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where used: the CLI reads VARIABLE before anything imports torch
    import torch
    from torch import nn

VARIABLE = "TAS_BENCH_COMPILE"


def compile_requested() -> bool:
    return os.environ.get(VARIABLE, "") == "1"


def compiles(device: torch.device) -> bool:
    """Whether training on `device` runs compiled: asked for, and on CUDA."""
    return device.type == "cuda" and compile_requested()


def compiled(model: nn.Module, device: torch.device, enabled: bool | None = None) -> Callable:
    """The forward function training calls: `torch.compile(model)` when `enabled` (default: `compiles(device)`),
    falling back to `model` itself, with one warning, at the first compile error (most surface at the first call)."""
    if not (compiles(device) if enabled is None else enabled):
        return model
    import torch

    try:
        fast = torch.compile(model)
    except Exception as e:  # e.g. no compiler backend for this platform
        _warn(e)
        return model
    current = [fast]

    def forward(x: torch.Tensor) -> torch.Tensor:
        if current[0] is not model:
            try:
                return current[0](x)
            except torch.cuda.OutOfMemoryError:
                raise  # not a compile error: eager would run out too
            except Exception as e:
                _warn(e)
                current[0] = model
        return model(x)

    return forward


def _warn(error: Exception) -> None:
    first = (str(error).strip().splitlines() or [""])[0][:200]
    warnings.warn(f"torch.compile failed ({type(error).__name__}: {first}); training eager", RuntimeWarning, 2)

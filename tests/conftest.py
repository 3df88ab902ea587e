import os
from pathlib import Path

import pytest
import torch

# Tests are CPU-only and sized for 2 cores; pin the thread count so timings and float results are repeatable.
torch.set_num_threads(min(2, os.cpu_count() or 1))
# W&B logging is off in tests unless a test turns it on (the sweep command's default comes from $WANDB_MODE).
os.environ.setdefault("WANDB_MODE", "disabled")

OFFICIAL_CONFIGS = sorted((Path(__file__).parents[1] / "tasbench" / "official_configs").glob("*.config"))
# The shapes of the paper's CIFAR-10 ResNet-56/110 and CIFAR-100 ResNet-32 rows and ablation (infer-width files too).
COMPARE_CONFIGS = sorted((Path(__file__).parents[1] / "tasbench" / "official_configs" / "compares").glob("*.config"))


@pytest.fixture
def official_configs() -> list[Path]:
    return OFFICIAL_CONFIGS


@pytest.fixture
def one_thread():
    """Runner tests use one torch thread: on 2 cores shared with other jobs, 2 threads spin-wait on each other and a
    ResNet-20 forward pass takes ~50x longer (0.67 s instead of 0.01 s, measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

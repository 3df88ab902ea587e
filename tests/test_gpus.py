"""GPU placement of a local sweep (`--device cuda`): every visible GPU used, `--runs-per-gpu` workers on each, each
worker pinned before CUDA starts in it. The machines here have no GPU: the assignment is checked in real spawned
worker processes with a fake device count; the CUDA path itself runs in `nox -s gpu_check`."""

import collections
import multiprocessing
import time

import pytest
import torch
from runner_helpers import pinned_gpu

from tasbench.errors import ConfigError
from tasbench.runner.executors import Executor
from tasbench.runner.gpus import default_workers, gpu_slots, physical_gpu, visible_gpus, worker_gpus
from tasbench.runner.worker_pool import submit, worker_pool


def test_slots_spread_the_first_workers_over_distinct_gpus():
    assert gpu_slots(["0", "1", "2"], 2) == ["0", "1", "2", "0", "1", "2"]
    assert worker_gpus("cuda", 2, 2, count=3) == ["0", "1"]  # a sweep of 2 runs still uses 2 GPUs
    with pytest.raises(ConfigError, match="torch sees none"):
        gpu_slots([], 1)


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus(count=3) == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # a scheduler gave this job GPUs 4 and 6 of the box
    assert visible_gpus(count=2) == ["4", "6"]
    assert worker_gpus("cuda", 4, 2, count=2) == ["4", "6", "4", "6"]
    assert physical_gpu(torch.device("cuda:1")) == "6" and physical_gpu(torch.device("cpu")) is None


def test_only_cuda_spreads_and_workers_default_to_gpus_times_runs_per_gpu():
    assert default_workers("cuda", 4, count=8) == 32
    assert default_workers("cpu", 4, count=8) == 1
    assert worker_gpus("cpu", 4, 1, count=2) is None
    assert worker_gpus("cuda:1", 4, 1, count=2) is None  # named GPU: every worker on it, as asked
    with pytest.raises(ConfigError, match="--runs-per-gpu 2 .* needs --executor local"):
        Executor("ray", runs_per_gpu=2)
    with pytest.raises(ConfigError, match="runs_per_gpu"):
        Executor("local", runs_per_gpu=0)


@pytest.mark.slow
def test_workers_are_pinned_k_per_gpu_in_real_processes(monkeypatch, capsys):
    """6 spawned workers on 3 (fake) GPUs, 2 runs per GPU: each worker sees exactly one GPU, each GPU two workers."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = worker_gpus("cuda", 6, 2, count=3)
    began = time.perf_counter()
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(6)
        with worker_pool(6, 1, gpus) as pool:
            seen = [f.result() for f in [submit(pool, pinned_gpu, barrier) for _ in range(6)]]
    with capsys.disabled():
        print(f"\n6 workers pinned over 3 fake GPUs in {time.perf_counter() - began:.1f} s")
    assert len({pid for pid, _, _ in seen}) == 6
    assert collections.Counter(gpu for _, gpu, _ in seen) == {"0": 2, "1": 2, "2": 2}
    assert all(threads == 1 for _, _, threads in seen)

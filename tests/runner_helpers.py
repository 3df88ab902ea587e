"""A sweep spec small enough that a whole sweep (teacher, pruning, retraining) takes seconds on a CPU."""

import json
import os
from pathlib import Path

import torch
import yaml

TINY_SPEC = {
    "name": "tiny",
    "data": {"dataset": "proxy", "proxy_train": 64, "proxy_test": 32},
    "networks": ["resnet20"],
    "teacher": {"epochs": 1, "batch_size": 32},
    "methods": [{"method": "uniform", "label": "Uniform"}],
    "ratios": [0.5, 0.3],
    "seeds": [0],
    "recipes": [{"name": "kd", "epochs": 2, "batch_size": 32}],
}


LATENCY = ("--latency-batches", "1,8")  # the default 1,256 costs seconds per run on a CPU


def write_spec(directory: Path, **changes) -> Path:
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_SPEC, **changes}))
    return path


def without_timing(metrics: dict) -> dict:
    """metrics.json minus what depends on the machine's speed or state: `timing`, `environment`, and the wall
    times a pruner reports in its own info (TAS's `search_seconds` and per-epoch `seconds`), at any depth."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("seconds")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip({k: v for k, v in metrics.items() if k not in ("timing", "environment")})


def spawned_workers(pid: int) -> list[int]:
    """The worker processes (multiprocessing spawn) that process `pid` started and that are still alive."""

    def read(path: str) -> str:  # a process may exit between being listed and being read: then it is not alive
        try:
            return open(path).read()
        except (FileNotFoundError, ProcessLookupError):
            return ""

    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        children += map(int, read(f"/proc/{pid}/task/{task}/children").split())
    return [c for c in children if "spawn_main" in read(f"/proc/{c}/cmdline")]


def assert_same_runs(runs, reference, root) -> None:
    """Every run under `root` has the metrics (timing and environment aside) and the weights it has under
    `reference`."""
    for cfg in runs:
        assert_same_results(cfg.directory(reference), cfg.directory(root))


def assert_same_results(a: Path, b: Path) -> None:
    """Run (or teacher) directories `a` and `b` hold the same metrics (timing, environment and a teacher's own
    `run_dir` aside) and weights."""
    a_metrics, b_metrics = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert without_timing(b_metrics) | {"run_dir": None} == without_timing(a_metrics) | {"run_dir": None}
    weights = [torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (a, b)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def pinned_gpu(barrier) -> tuple[int, str, int]:
    """In a worker: (its pid, the GPU it is pinned to, its torch threads); waits until every worker holds one task,
    so that each task runs in a different worker."""
    barrier.wait(timeout=120)
    return os.getpid(), os.environ["CUDA_VISIBLE_DEVICES"], torch.get_num_threads()

"""torchrun DDP for one run: the sharded, gathered forward gives the whole-batch gradient, and a run completes on
2 CPU processes with the gloo backend."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from runner_helpers import write_spec

from tasbench.runner.spec import load_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port())]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_gathered_forward_gives_the_whole_batch_gradient():
    result = torchrun(str(Path(__file__).with_name("ddp_grad_check.py")))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert result.stdout.count("logits and gradient match") == 2


@pytest.mark.slow
def test_a_run_under_torchrun_with_two_cpu_processes(tmp_path):
    spec = write_spec(tmp_path, ratios=[0.5])
    (cfg,) = load_sweep(spec).runs
    root = tmp_path / "runs"
    result = torchrun(
        "-m",
        "tasbench.runner.ddp",
        str(spec),
        "--index",
        "0",
        "--out",
        str(root),
        "--latency-batches",
        "1,8",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((cfg.directory(root) / "metrics.json").read_text())
    assert metrics["timing"]["ddp_world_size"] == 2 and metrics["hash"] == cfg.directory(root).name
    assert len((cfg.directory(root) / "log.csv").read_text().splitlines()) == 1 + 2
    # the checkpoint holds the plain module's keys: the run can be resumed without torchrun
    state = torch.load(cfg.directory(root) / "checkpoint.pt", weights_only=True)["model"]
    assert not any(k.startswith("ddp.") for k in state)

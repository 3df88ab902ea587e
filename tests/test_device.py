"""`--device`: one reading (tasbench/device.py) for every command, the sweep's workers, torchrun ranks and benchmarks.

This machine has no GPU; the GPU-present cases patch what torch reports (`torch.cuda.is_available`/`device_count`).
"""

import pytest
import torch
from runner_helpers import write_spec

from tasbench.cli import build_parser
from tasbench.device import parse_device
from tasbench.errors import ConfigError
from tasbench.runner import ddp
from tasbench.runner.executors import Job, work
from tasbench.runner.spec import load_sweep

from helpers import assert_one_line_error


def gpus(monkeypatch, count: int) -> None:
    """Make torch report `count` CUDA GPUs (0: no CUDA at all)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(
    "count,name,expected",
    [
        (0, "auto", "cpu"),
        (1, "auto", "cuda"),
        (0, "cpu", "cpu"),
        (2, "cpu", "cpu"),
        (1, "cuda", "cuda"),
        (1, "cuda:0", "cuda:0"),
        (2, "cuda:1", "cuda:1"),
    ],
)
def test_a_device_this_machine_has(monkeypatch, count, name, expected):
    gpus(monkeypatch, count)
    assert parse_device(name) == torch.device(expected)


NO_GPU = "device '{name}' asked for, but this machine has no CUDA GPU (torch {torch} sees none); use --device cpu"
UNKNOWN = "unknown device '{name}'; allowed: auto, cpu, cuda, cuda:N (N: a GPU index)"


@pytest.mark.parametrize(
    "count,name,message",
    [
        (1, "bogus", UNKNOWN),
        (1, "tpu", UNKNOWN),
        (1, "CUDA", UNKNOWN),
        (1, "cuda:", UNKNOWN),
        (1, "cuda:-1", UNKNOWN),
        (1, "cuda:0:1", UNKNOWN),
        (1, "mps", UNKNOWN),
        (1, "", UNKNOWN),
        (
            1,
            "cuda:7",
            "device 'cuda:7' asked for, but this machine has 1 CUDA GPU (cuda:0); allowed: auto, cpu, cuda, cuda:0",
        ),
        (2, "cuda:2", "this machine has 2 CUDA GPUs (cuda:0, cuda:1); allowed: auto, cpu, cuda, cuda:0, cuda:1"),
        (0, "cuda", NO_GPU),
        (0, "cuda:0", NO_GPU),
    ],
)
def test_a_device_this_machine_lacks_is_one_clear_error(monkeypatch, count, name, message):
    gpus(monkeypatch, count)
    with pytest.raises(ConfigError) as e:
        parse_device(name)
    assert message.format(name=name, torch=torch.__version__) in str(e.value) and "\n" not in str(e.value)


SMALL = ["--network", "resnet20", "--dataset", "proxy", "--proxy-train", "64", "--proxy-test", "32"]
COMMANDS = {
    "train": ["train", *SMALL, "--epochs", "1", "--no-progress"],
    "prune": ["prune", "--method", "uniform", "--ratio", "0.5", *SMALL],
    "sweep": ["sweep", "{spec}", "--dry-run"],
    "bench": ["bench", "search-step", "--batch-size", "2", "--steps", "1", "--warmup", "0"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_that_takes_a_device_defaults_to_auto(command):
    # sweep keeps the name (each run resolves it where it executes); the others resolve it as they read it
    expected = "auto" if command == "sweep" else parse_device("auto")
    assert build_parser().parse_args(COMMANDS[command]).device == expected


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "count,device,message",
    [
        (1, "bogus", "unknown device 'bogus'; allowed: auto, cpu, cuda, cuda:N"),
        (1, "cuda:7", "device 'cuda:7' asked for, but this machine has 1 CUDA GPU (cuda:0)"),
        (0, "cuda", "device 'cuda' asked for, but this machine has no CUDA GPU"),
    ],
)
def test_every_command_refuses_a_device_in_one_line(capsys, monkeypatch, tmp_path, command, count, device, message):
    gpus(monkeypatch, count)
    argv = [a.format(spec=write_spec(tmp_path)) for a in COMMANDS[command]] + ["--device", device]
    if command in ("train", "sweep"):
        argv += ["--out", str(tmp_path / "out")]
    assert_one_line_error(capsys, argv, message)
    assert not (tmp_path / "out").exists()  # refused before any run started


def test_a_ray_sweep_leaves_the_gpu_check_to_its_nodes(capsys, monkeypatch, tmp_path):
    """The machine that starts a Ray sweep may have no GPU while its workers do: only the name is checked there."""
    gpus(monkeypatch, 0)
    spec = str(write_spec(tmp_path))
    argv = ["sweep", spec, "--dry-run", "--executor", "ray", "--out", str(tmp_path / "out")]
    assert_one_line_error(capsys, [*argv, "--device", "bogus"], "unknown device 'bogus'")
    from tasbench.cli import main

    assert main([*argv, "--device", "cuda"]) == 0  # a dry run: nothing starts on Ray


def test_a_worker_resolves_the_device_itself(monkeypatch, tmp_path):
    """A sweep's job carries the name ("auto"); the process that runs it resolves it, and refuses a GPU it lacks
    before it trains anything."""
    cfg = load_sweep(write_spec(tmp_path)).runs[0]
    gpus(monkeypatch, 1)
    job = Job("teacher", cfg, str(tmp_path / "runs"), "cuda:3", None, threads=1)
    with pytest.raises(ConfigError, match="device 'cuda:3' asked for, but this machine has 1 CUDA GPU"):
        work(job)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "count,device,local_rank,message",
    [
        (1, "bogus", "0", "tasbench.runner.ddp: error: " + UNKNOWN.format(name="bogus")),
        (
            0,
            "cuda",
            "0",
            "tasbench.runner.ddp: error: " + NO_GPU.format(name="cuda", torch=torch.__version__) + " or auto",
        ),
        (
            1,
            "auto",
            "1",
            "tasbench.runner.ddp: error: local rank 1 takes a GPU of its own: device 'cuda:1' asked for, "
            "but this machine has 1 CUDA GPU (cuda:0); allowed: auto, cpu, cuda, cuda:0; start at most one "
            "rank per GPU, or use --device cpu",
        ),
    ],
)
def test_a_torchrun_rank_refuses_a_device_before_joining_the_group(
    capsys, monkeypatch, tmp_path, count, device, local_rank, message
):
    gpus(monkeypatch, count)
    monkeypatch.setenv("RANK", local_rank)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert ddp.main([str(write_spec(tmp_path)), "--index", "0", "--device", device]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == message + "\n"

"""TAS from the command line: search -> derived net (+ official .config) -> KD training; the benchmark; bad input."""

import json
import mmap

import pytest
import torch

from tasbench.checkpoint import load_model
from tasbench.flops import macs
from tasbench.microbench import peak_memory_mib
from tasbench.official_config import read_tas_config
from tasbench.presets import resnet20

from helpers import assert_one_line_error
from helpers import run_cli as run

PROXY = ["--dataset", "proxy", "--proxy-train", "128", "--proxy-test", "64"]
QUICK = ["--opt", "epochs=1", "--opt", "batch_size=32"]


def test_search_derive_export_and_distil(capsys, tmp_path):
    out = ["--out", str(tmp_path / "runs"), "--no-progress"]
    _, teacher, _ = run(capsys, "train", "--network", "resnet20", *PROXY, "--epochs", "1", "--batch-size", "64", *out)
    teacher_file = teacher["run_dir"] + "/model.pt"
    code, pruned, _ = run(
        capsys,
        "prune",
        "--method",
        "tas",
        "--network",
        "resnet20",
        "--ratio",
        "0.5",
        *PROXY,
        *QUICK,
        "--save",
        str(tmp_path / "tas.pt"),
        "--save-tas-config",
        str(tmp_path / "tas.config"),
        "--workdir",
        str(tmp_path / "search"),
        "--no-progress",
    )
    assert code == 0
    arch, _ = load_model(tmp_path / "tas.pt")
    assert read_tas_config(tmp_path / "tas.config") == arch
    assert pruned["macs"] == macs(arch) == pruned["info"]["macs"]
    assert pruned["flop_ratio"] == pruned["info"]["flop_ratio"] == macs(arch) / macs(resnet20())
    assert pruned["options"]["search"] == "width+depth" and len(pruned["info"]["history"]) == 1
    assert (tmp_path / "search" / "tas-search.pt").exists()  # the resumable search checkpoint
    code, student, _ = run(
        capsys,
        "train",
        "--weights",
        str(tmp_path / "tas.pt"),
        "--teacher",
        teacher_file,
        *PROXY,
        "--epochs",
        "1",
        "--batch-size",
        "64",
        *out,
    )
    assert code == 0 and student["macs"] == macs(arch)
    config = json.loads((tmp_path / "runs" / "train" / student["run_dir"].split("/")[-1] / "params.json").read_text())
    assert config["config"]["distill"] == {"alpha": 0.9, "temperature": 4.0}


@pytest.mark.parametrize("search", ["width", "depth", "random"])
def test_ablations_run_from_the_command_line(capsys, search):
    code, pruned, _ = run(
        capsys,
        "prune",
        "--method",
        "tas",
        "--network",
        "resnet20",
        "--ratio",
        "0.6",
        *PROXY,
        *QUICK,
        "--opt",
        f"search={search}",
        "--no-progress",
    )
    assert code == 0
    arch = pruned["arch"]
    if search == "width":
        assert arch["xblocks"] == [3, 3, 3]
    if search == "depth":
        assert arch["xchannels"] == list(resnet20().xchannels)
    if search == "random":
        assert 0.55 <= pruned["flop_ratio"] <= 0.6 and "history" not in pruned["info"]


def test_search_step_benchmark_prints_seconds_per_step(capsys):
    code, out, _ = run(
        capsys,
        "bench",
        "search-step",
        "--network",
        "resnet20",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--official",
    )
    assert code == 0
    assert out["benchmark"] == "search-step" and out["steps"] == 2 and out["shapes"] == "dynamic"
    assert 0 < out["min_seconds"] <= out["seconds_per_step"]
    assert out["ratio_to_train_step"] == out["seconds_per_step"] / out["train_step_seconds"]
    assert out["speedup_over_official"] == out["official_step_seconds"] / out["seconds_per_step"]
    assert out["peak_rss_mib"] > out["peak_rss_growth_mib"] >= 0


def _touch_fresh_pages(mib: int) -> None:
    """Make `mib` MiB resident in pages no allocator held before: an anonymous mmap, one byte written per page. A
    torch tensor would do in a fresh process, but in a long one (a full pytest run) malloc may hand back pages that are
    already resident, and the step then truly needs no new memory (CI saw 0.02 MiB of growth for a 64 MiB tensor)."""
    with mmap.mmap(-1, mib * 2**20) as pages:
        for offset in range(0, len(pages), mmap.PAGESIZE):
            pages[offset] = 1


def test_peak_memory_sees_what_a_step_allocates():
    """The peak is reset before the step, so a big allocation earlier in this process does not count."""
    _touch_fresh_pages(96)  # resident, then unmapped: the process's peak is now at least 96 MiB above its RSS
    idle = peak_memory_mib(lambda: None, torch.device("cpu"))
    busy = peak_memory_mib(lambda: _touch_fresh_pages(64), torch.device("cpu"))
    assert idle["peak_rss_growth_mib"] < 8
    assert 60 <= busy["peak_rss_growth_mib"] < 80


BAD_INPUT = [
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.01", *PROXY],
        "FLOP ratio 0.01 is below the smallest net this search can reach (0.0245 of the FLOPs with "
        "search='width+depth'); allowed: [0.0245, 1]",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "1.2", *PROXY],
        "FLOP ratio 1.2 is outside (0, 1]",
    ),
    (["prune", "--method", "tas", "--network", "resnet21", "--ratio", "0.5", *PROXY], "unknown network 'resnet21'"),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--opt", "k=9", *PROXY],
        "k must be in [0, 8] (0 = all candidates), got 9",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--opt", "tau_min=20", *PROXY],
        "tau_min must be in (0, tau_max=10.0], got 20.0",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--opt", "tau_schedule=exp", *PROXY],
        "unknown tau_schedule 'exp'; allowed: linear, cosine",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--opt", "k=two", *PROXY],
        "k must be an int, got 'two'",
    ),
    (
        ["bench", "search-step", "--network", "resnet20", "--batch-size", "0"],
        "argument --batch-size: must be in [1, 65536], got 0",
    ),
    (["bench", "search-step", "--network", "resnet99"], "unknown network 'resnet99'"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[m[:40] for _, m in BAD_INPUT])
def test_bad_input_is_one_clear_line(capsys, argv, message):
    assert_one_line_error(capsys, argv, message)

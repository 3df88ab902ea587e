"""Every number a user gives is bounded and finite, and every option is checked when it is read, not hours later.

Two halves: a contract over every config dataclass (each int field refuses absurd sizes on both sides, each float
field refuses infinity and NaN, naming the field), and a table of command lines and specs that each must stop at
once with one line. The limits themselves live in tasbench/bounds.py.
"""

import dataclasses
import math
import typing

import pytest
import torch
from test_report import fake_run

from tasbench import testing
from tasbench.data import DataConfig
from tasbench.distill import DistillConfig
from tasbench.errors import ConfigError
from tasbench.pruner import get_pruner, pruner_names
from tasbench.recipes import Recipe
from tasbench.report.wandb_log import WandbSettings
from tasbench.runner.executors import Executor
from tasbench.train import TrainConfig

from helpers import assert_one_line_error

CONFIGS = [TrainConfig, DataConfig, DistillConfig, Recipe, WandbSettings, Executor] + [
    get_pruner(name).options for name in pruner_names()
]
NUMERIC = [
    (cls, f.name, typing.get_type_hints(cls)[f.name])
    for cls in CONFIGS
    for f in dataclasses.fields(cls)
    if typing.get_type_hints(cls)[f.name] in (int, float)
]


def test_the_contract_covers_every_method_and_recipe():
    names = {cls.__name__ for cls in CONFIGS}
    assert {
        "SearchConfig",
        "FpgmOptions",
        "SfpOptions",
        "L1Options",
        "UniformOptions",
        "Recipe",
        "TrainConfig",
    } <= names
    assert len(NUMERIC) >= 40  # SearchConfig alone has 16 numeric fields


@pytest.mark.parametrize("cls,name,kind", NUMERIC, ids=[f"{c.__name__}.{n}" for c, n, _ in NUMERIC])
def test_every_numeric_option_is_bounded_and_finite(cls, name, kind):
    bad = [10**30, -(10**30)] if kind is int else [math.inf, -math.inf, math.nan]
    for value in bad:
        with pytest.raises(ConfigError) as caught:
            cls(**{name: value})
        # the message names the field (a recipe's KD fields are checked by the KD config, which says so)
        assert name.removeprefix("kd_") in str(caught.value) and str(value)[:6] in str(caught.value)
        if kind is float:
            assert "finite" in str(caught.value) or "must be in" in str(caught.value)
    cls()  # and the defaults are valid


def test_the_same_message_reaches_a_spec(tmp_path):
    from tasbench.runner.spec import load_sweep

    spec = tmp_path / "s.yaml"
    spec.write_text("networks: [resnet20]\nmethods: [{method: tas, options: {tau_max: .inf}}]\nratios: [0.5]\n")
    with pytest.raises(ConfigError, match=r"methods\[0\].options: tau_max must be a finite number, got inf"):
        load_sweep(spec)


SPEC = "networks: [resnet20]\nmethods: [{method: uniform}]\nratios: [0.5]\n"
SMALL = ["--dataset", "proxy", "--proxy-train", "64", "--proxy-test", "32", "--epochs", "1"]


def spec(text: str):
    def make(d):
        (d / "s.yaml").write_text(text)
        return d / "s.yaml"

    return make


def empty_cifar10(d):
    nothing, ten = torch.zeros((0, 3, 32, 32), dtype=torch.uint8), torch.zeros((10, 3, 32, 32), dtype=torch.uint8)
    testing.write_cifar(
        "cifar10", d, {"train": (nothing, torch.zeros(0, dtype=torch.int64)), "test": (ten, torch.arange(10))}
    )
    return d


BOUNDS = [
    # infinity where it means nothing (class: `inf` passes `> 0` and then breaks hashing)
    (["train", "--lr", "inf", *SMALL], "lr must be a finite number, got inf"),
    (["train", "--weight-decay", "inf", *SMALL], "weight_decay must be a finite number, got inf"),
    (["train", "--momentum", "nan", *SMALL], "momentum must be a finite number, got nan"),
    (["train", "--kd-temperature", "inf", "--teacher", "{d}/no.pt", *SMALL], "temperature must be a finite number"),
    (["train", "--kd-alpha=-inf", "--teacher", "{d}/no.pt", *SMALL], "alpha must be a finite number, got -inf"),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--opt", "arch_lr=inf"],
        "arch_lr must be a finite number, got inf",
    ),
    (
        ["prune", "--method", "fpgm", "--network", "resnet20", "--ratio", "0.5", "--opt", "lr=nan"],
        "lr must be a finite number, got nan",
    ),
    (
        ["prune", "--method", "sfp", "--network", "resnet20", "--ratio", "0.5", "--opt", "lr=inf"],
        "lr must be a finite number, got inf",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: sfp, options: {{batch_size: 0}}}}]"],
        "methods[0].options: batch_size must be in [1, ",
    ),
    (
        ["prune", "--method", "taylor", "--network", "resnet20", "--ratio", "0.5", "--opt", "tolerance=inf"],
        "tolerance must be in (0, 0.5), got inf",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: taylor, options: {{batches: 0}}}}]"],
        "methods[0].options: batches must be in [1, 100000], got 0",
    ),
    (["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "inf"], "FLOP ratio inf is outside (0, 1]"),
    (
        ["sweep", "{d}/s.yaml", "--wandb-timeout", "inf"],
        "argument --wandb-timeout: must be a finite number in (0, inf)",
    ),
    (
        ["compare", "--wandb-dir", "{d}", "--tolerance", "nan"],
        "argument --tolerance: must be a finite number in [0, 100]",
    ),
    # every option of every method and recipe checked when the spec is read (not after the teacher trained)
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: tas, options: {{momentum: -1}}}}]"],
        "methods[0].options: momentum must be in [0, 1), got -1",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: tas, options: {{arch_beta1: 1.5}}}}]"],
        "methods[0].options: arch_beta1 must be in [0, 1) (Adam's first beta), got 1.5",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: tas, options: {{weight_decay: -0.1}}}}]"],
        "methods[0].options: weight_decay must be >= 0, got -0.1",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "methods=[{{method: tas, options: {{k: 9}}}}]"],
        "methods[0].options: k must be in [0, 8] (0 = all candidates), got 9",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "recipes=[{{name: kd, kd_temperature: 0}}]"],
        "recipes[0]: temperature must be > 0 (KD temperature), got 0",
    ),
    (
        ["sweep", "{d}/s.yaml", "--latency-batches=-1"],
        "argument --latency-batches: comma-separated batch sizes, each must be in [1, 65536], got -1",
    ),
    (["sweep", "{d}/s.yaml", "--latency-batches", "1,x"], "each must be an int in [1, 65536], got 'x'"),
    (["sweep", "{d}/s.yaml", "--dry-run", "--wandb", "onlin"], "unknown W&B mode 'onlin'; allowed: "),
    # upper bounds that name themselves
    (
        ["train", "--proxy-train", "1000000000000", "--epochs", "1"],
        "proxy_train must be in [1, 200000], got 1000000000000",
    ),
    (["train", "--epochs", "10000000", "--dataset", "proxy"], "epochs must be in [1, 10000], got 10000000"),
    (["train", "--batch-size", "1000000", "--dataset", "proxy"], "batch_size must be in [1, 65536], got 1000000"),
    (["train", "--seed", "-1", "--dataset", "proxy"], "seed must be in [0, 9223372036854775807], got -1"),
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--seed", str(2**64)],
        "argument --seed: must be in [0, 9223372036854775807], got 18446744073709551616",
    ),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--set", "seeds=[" + ",".join(map(str, range(10_001))) + "]"],
        "the spec expands to more than 10000 runs (methods x networks x ratios x recipes x seeds); split it",
    ),
    (["sweep", "{d}/s.yaml", "--workers", "100000"], "argument --workers: must be in [1, 1024], got 100000"),
    (["sweep", "{d}/s.yaml", "--set", "data.workers=5000"], "data: workers must be in [0, 1024], got 5000"),
    # empty or meaningless values
    (["train", "--out", "", *SMALL], "argument --out: must be a path, got an empty string"),
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--save", ""],
        "argument --save: must be a path, got an empty string",
    ),
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--save-tas-config", " "],
        "argument --save-tas-config: must be a path, got an empty string",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--workdir", ""],
        "argument --workdir: must be a path, got an empty string",
    ),
    (["sweep", "{d}/s.yaml", "--out", ""], "argument --out: must be a path, got an empty string"),
    (["report", "--runs", "{d}", "--out", ""], "argument --out: must be a path, got an empty string"),
    (["sweep", "{d}/s.yaml", "--gpus-per-run", "-1"], "argument --gpus-per-run: must be in [0, inf), got -1"),
    (
        ["sweep", "{d}/s.yaml", "--gpus-per-run", "1"],
        "--gpus-per-run 1 reserves GPUs on a Ray or Slurm cluster; it needs --executor ray or slurm",
    ),
    (
        ["sweep", "{d}/s.yaml", "--executor", "slurm", "--gpus-per-run", "0.5"],
        "--gpus-per-run 0.5: a Slurm job takes whole GPUs (0, 1, 2, ...)",
    ),
    (
        ["sweep", "{d}/s.yaml", "--slurm-partition", "gpu"],
        "--slurm-partition gpu is a Slurm job setting; it needs --executor slurm",
    ),
    (["sweep", "{d}/s.yaml", "--slurm-time", "0"], "argument --slurm-time: must be in [1, 525600], got 0"),
    (
        ["sweep", "{d}/s.yaml", "--executor", "slurm", "--slurm-cluster", "pbs"],
        "unknown slurm_cluster 'pbs'; allowed: slurm, local",
    ),
    (
        ["sweep", "{d}/s.yaml", "--runs-per-gpu", "2", "--executor", "ray"],
        "--runs-per-gpu 2 shares each GPU among local workers; it needs --executor local",
    ),
    (["sweep", "{d}/s.yaml", "--runs-per-gpu", "0"], "argument --runs-per-gpu: must be in [1, 1024], got 0"),
    (["bench", "gpu", "--batch-size", "0"], "argument --batch-size: must be in [1, 65536], got 0"),
    (["sweep", "{d}/s.yaml", "--threads", "-1"], "argument --threads: must be in [0, 1024], got -1"),
    (["regress", "--threads", "-1"], "argument --threads: must be in [1, 1024], got -1"),
    (["regress", "--workers", "0"], "argument --workers: must be in [1, 1024], got 0"),
    (["bench", "search-step", "--warmup", "-1"], "argument --warmup: must be in [0, 100000], got -1"),
    (["bench", "search-step", "--threads", "-1"], "argument --threads: must be in [1, 1024], got -1"),
    (["bench", "search-step", "--k", "9"], "argument --k: must be in [0, 8], got 9"),
    (["compare", "--wandb-dir", "{d}", "--timeout", "-5"], "argument --timeout: must be in [1, 3600], got -5"),
    (["compare", "--wandb-dir", "{d}", "--timeout", "0"], "argument --timeout: must be in [1, 3600], got 0"),
    # a file where a directory must be: named at once, not "File exists ... free space" after the work
    (["train", "--out", "{d}/afile", *SMALL], "--out '{d}/afile' is a file, not a directory; move it away or give"),
    (
        ["sweep", "{d}/s.yaml", "--dry-run", "--out", "{d}/afile/runs"],
        "--out '{d}/afile/runs' lies under '{d}/afile', which is a file, not a directory",
    ),
    (["report", "--runs", "{d}/runs", "--paper", "none", "--out", "{d}/afile"], "--out '{d}/afile' is a file, not a"),
    (
        ["prune", "--method", "tas", "--network", "resnet20", "--ratio", "0.5", "--workdir", "{d}/afile"],
        "--workdir '{d}/afile' is a file, not a directory",
    ),
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--save-tas-config", "{d}/afile/x"],
        "--save-tas-config '{d}/afile/x' lies under '{d}/afile', which is a file, not a directory",
    ),
    # parsable but wrong specs and data
    (["sweep", "{d}/m.yaml"], "unknown key 'foo'; allowed: name, description, data"),
    (["sweep", "{d}/l.yaml"], "'methods[0].label' must be a string, got ['a', 'b']"),
    (["sweep", "{d}/n.yaml"], "'name' must be a string, got {{'x': 1}}"),
    (
        ["train", "--dataset", "cifar10", "--data-dir", "{d}/empty", "--epochs", "1"],
        "CIFAR-10 in '{d}/empty/cifar-10-batches-py' holds no training images (data_batch_1, data_batch_2, "
        "data_batch_3, data_batch_4, data_batch_5: 0 images)",
    ),
]


@pytest.mark.parametrize("argv,message", BOUNDS, ids=[m[:40] for _, m in BOUNDS])
def test_a_bad_number_or_option_is_one_clear_line_before_any_work(capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.chdir(tmp_path)  # `--out ''` must not write here either
    spec(SPEC)(tmp_path)
    (tmp_path / "m.yaml").write_text(SPEC + "1: one\nfoo: two\n")  # keys of two types cannot be sorted together
    (tmp_path / "l.yaml").write_text(SPEC.replace("uniform}", "uniform, label: [a, b]}"))
    (tmp_path / "n.yaml").write_text(SPEC + "name: {x: 1}\n")
    empty_cifar10(tmp_path / "empty")
    (tmp_path / "afile").write_text("a file, not a directory")
    fake_run(tmp_path / "runs", "Uniform", 0.5, 0, 91.0, 62_000_000)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(d=tmp_path) for a in argv]
    if argv[0] in ("train", "sweep") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    assert_one_line_error(capsys, argv, message.format(d=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "out") == before  # nothing written here

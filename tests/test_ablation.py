"""The ablation spec (the paper's Tables 1/2): CIFAR-100 ResNet-32, the released pre-defined / random / TAS shapes at
their own FLOP ratios, a fresh TAS search and the random search at the TAS shape's ratio, each with and without KD."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tas.released import ReleasedOptions, released_shape
from tasbench import testing
from tasbench.flops import macs
from tasbench.runner.spec import load_sweep

ROOT = Path(__file__).parents[1]
SPEC = ROOT / "benchmarks" / "cifar100-ablation.yaml"
# The released shapes' exact MACs on CIFAR-100 ResNet-32 (69,130,596 unpruned), counted by the engine.
SHAPES = {
    "CIFAR100-FIX-R32": 41_095_916,
    "CIFAR100-RAND-R32": 42_909_096,
    "CIFAR100-TAS-R32": 42_493_284,
}


def test_every_shape_and_search_is_retrained_with_and_without_kd():
    runs = load_sweep(SPEC).runs
    cells: dict[str, set] = {}
    for run in runs:
        assert (run.network, run.arch().num_classes) == ("resnet32", 100)
        cells.setdefault(run.label, set()).add((run.recipe.name, run.seed))
    assert sorted(cells) == [
        "Pre-defined (released shape)",
        "Random (released shape)",
        "Random search",
        "TAS",
        "TAS (released shape)",
    ]
    every = {(recipe, seed) for recipe in ("kd", "scratch") for seed in (0, 1, 2)}
    assert all(c == every for c in cells.values()) and len(runs) == 30
    kd = {r.recipe for r in runs if r.recipe.name == "kd"}
    scratch = {r.recipe for r in runs if r.recipe.name == "scratch"}
    assert len(kd) == len(scratch) == 1
    (k,), (s,) = kd, scratch
    assert (k.epochs, k.kd_alpha, k.kd_temperature) == (305, 0.9, 4.0) and s.epochs == k.epochs and s.lr == k.lr


def test_released_shapes_run_at_their_own_ratio_and_searches_at_the_tas_shapes():
    runs = load_sweep(SPEC).runs
    arch = runs[0].arch()
    tas_ratio = SHAPES["CIFAR100-TAS-R32"] / macs(arch)
    for run in runs:
        if run.method == "released":
            shape, _ = released_shape(arch, ReleasedOptions(config=run.options.config))
            assert macs(shape) == SHAPES[run.options.config]
            assert run.ratio == pytest.approx(macs(shape) / macs(arch), abs=5e-4)
        else:
            assert run.method == "tas" and run.ratio == pytest.approx(tas_ratio, abs=5e-4)
            assert run.options.search == ("random" if run.label == "Random search" else "width+depth")


def test_the_ablation_shares_the_cifar100_specs_resnet32_teacher():
    """One root trains the ResNet-32 teacher once for both sweeps: same teacher config, same directory."""
    ablation = load_sweep(SPEC).runs
    table = [r for r in load_sweep(ROOT / "benchmarks" / "cifar100.yaml").runs if r.network == "resnet32"]
    dirs = lambda runs: {r.seed: r.teacher_directory("root") for r in runs}  # noqa: E731
    assert dirs(ablation) == dirs(table)


@pytest.mark.slow
def test_nox_reproduce_ablation_dry_run_names_the_released_shapes_flops(tmp_path):
    """`nox -s reproduce_ablation -- --data-dir D --dry-run` (here in this venv: --no-venv) lists every run, the
    released ones with their shape's file and exact MACs."""
    images = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(200) % 100
    testing.write_cifar("cifar100", tmp_path / "data", {"train": (images, labels), "test": (images, labels)})
    argv = [sys.executable, "-m", "nox", "--no-venv", "--no-install", "-s", "reproduce_ablation", "--"]
    argv += ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs"), "--dry-run"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "30 runs: 0 done, 0 partial (resume), 30 to do" in out
    for config, count in SHAPES.items():
        shape = f"compares/{config}.config: {count:,} MACs, {count / 69_130_596:.4f}"
        assert sum(shape in line for line in out.splitlines()) == 6, shape  # 3 seeds x 2 recipes
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing

"""The reproduce specs run the release's procedure, and each network runs at the ratio of its released TAS shape.

The checks read the shipped specs (benchmarks/cifar10.yaml, cifar100.yaml, imagenet.yaml) through `load_sweep`,
so what they assert is what a sweep would run.
"""

from pathlib import Path

import pytest
from runner_helpers import write_spec

from tas.released import ReleasedOptions, released_shape
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.runner.spec import load_sweep

SPECS = Path(__file__).parents[1] / "benchmarks"
REPRODUCE = ["cifar10", "cifar100", "imagenet"]
# The release's search budget per data set (docs/reference/TAS-OFFICIAL.md, "Schedules"): epochs, batch per half.
SEARCH_BUDGET = {"cifar10": (600, 256), "cifar100": (600, 256), "imagenet": (120, 256)}
# 300 (CIFAR) / 120 (ImageNet) epochs after 5 warm-up epochs, as the release's optimizer configs.
TRAIN_EPOCHS = {"cifar10": 305, "cifar100": 305, "imagenet": 125}


@pytest.mark.parametrize("name", REPRODUCE)
def test_every_network_runs_at_the_ratio_of_its_released_shape(name):
    runs = load_sweep(SPECS / f"{name}.yaml").runs
    for run in runs:
        if getattr(run.options, "variant", ""):  # Li et al.'s fixed shapes: their FLOPs are whatever they keep
            continue
        shape, _ = released_shape(run.arch(), ReleasedOptions())
        assert run.ratio == pytest.approx(macs(shape) / macs(run.arch()), abs=5e-4), (run.method, run.network)
    methods = {run.method for run in runs}
    assert {"tas", "released", "uniform", "fpgm"} <= methods


@pytest.mark.parametrize("name", REPRODUCE)
def test_reproduce_specs_search_and_retrain_as_the_release(name):
    runs = load_sweep(SPECS / f"{name}.yaml").runs
    for run in runs:
        assert (run.teacher.epochs, run.teacher.warmup_epochs, run.teacher.batch_size) == (TRAIN_EPOCHS[name], 5, 256)
        if run.method == "tas":
            o = run.options
            assert (o.epochs, o.batch_size) == SEARCH_BUDGET[name]
            assert (o.tau_schedule, o.tau_max, o.tau_min) == ("cosine", 5.0, 0.1)
        if not getattr(run.options, "variant", ""):
            r = run.recipe
            assert (r.name, r.epochs, r.warmup_epochs, r.kd_alpha, r.kd_temperature) == (
                "kd",
                TRAIN_EPOCHS[name],
                5,
                0.9,
                4.0,
            )


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_specs_hold_the_papers_width_only_and_depth_only_rows(name):
    """Table 3's TAS (W) and TAS (D): the same search on one axis, for every network and seed that TAS runs."""
    runs = load_sweep(SPECS / f"{name}.yaml").runs
    by_label = {}
    for run in runs:
        if run.method == "tas":
            by_label.setdefault(run.label, []).append(run)
    assert sorted(by_label) == ["TAS", "TAS (D)", "TAS (W)"]
    assert {r.options.search for r in by_label["TAS (W)"]} == {"width"}
    assert {r.options.search for r in by_label["TAS (D)"]} == {"depth"}
    cells = {label: sorted((r.network, r.ratio, r.seed) for r in rs) for label, rs in by_label.items()}
    assert cells["TAS (W)"] == cells["TAS (D)"] == cells["TAS"] and len(cells["TAS"]) == 15


def test_per_network_ratios_expand_per_network(tmp_path):
    spec = write_spec(tmp_path, networks=["resnet20", "resnet32"], ratios={"resnet20": [0.55], "resnet32": [0.5, 0.3]})
    assert [(r.network, r.ratio) for r in load_sweep(spec).runs] == [
        ("resnet20", 0.55),
        ("resnet32", 0.5),
        ("resnet32", 0.3),
    ]


BAD_RATIOS = [
    ({"ratios": {"resnet20": [0.5]}}, "runs 'resnet32', but the per-network 'ratios' name only resnet20"),
    ({"ratios": {"resnet20": [0.5], "resnet32": [0.5], "resnet65": [0.5]}}, "names network 'resnet65', which is not"),
    ({"ratios": {"resnet20": 0.5, "resnet32": [0.5]}}, "'ratios.resnet20' must be a list, got 0.5"),
    ({"ratios": {"resnet20": [1.5], "resnet32": [0.5]}}, "ratios.resnet20[0]: FLOP ratio 1.5 is outside (0, 1]"),
    ({"ratios": {}}, "'ratios' is empty, so the sweep has no runs"),
]


@pytest.mark.parametrize("change,message", BAD_RATIOS, ids=[m[:40] for _, m in BAD_RATIOS])
def test_bad_per_network_ratios_are_one_clear_error(tmp_path, change, message):
    path = write_spec(tmp_path, networks=["resnet20", "resnet32"], **change)
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    assert message in str(e.value) and "\n" not in str(e.value)

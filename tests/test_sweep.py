"""Sweep specs: expansion, command-line overrides, and one clear error for each kind of bad spec."""

from pathlib import Path

import pytest
import yaml
from runner_helpers import TINY_SPEC, write_spec

from tasbench.errors import ConfigError
from tasbench.runner.spec import apply_override, load_sweep


def test_a_spec_expands_to_the_product_of_its_lists(tmp_path):
    sweep = load_sweep(write_spec(tmp_path, seeds=[0, 1]))
    assert sweep.name == "tiny" and len(sweep.runs) == 2 * 2  # ratios x seeds
    assert [(r.ratio, r.seed) for r in sweep.runs] == [(0.5, 0), (0.5, 1), (0.3, 0), (0.3, 1)]
    run = sweep.runs[1]
    assert run.teacher.seed == 1 and run.teacher.epochs == 1 and run.recipe.name == "kd" and run.label == "Uniform"
    assert len({r.directory("runs") for r in sweep.runs}) == 4
    assert len({r.teacher_directory("runs") for r in sweep.runs}) == 2  # one teacher per seed, shared by ratios


def test_overrides_reach_any_field(tmp_path):
    sweep = load_sweep(
        write_spec(tmp_path),
        [
            "seeds=[3]",
            "teacher.epochs=2",
            "methods.0.options.tolerance=0.02",
            "methods.0.ratios=[0.8]",
            "recipes.0.name=scratch-b",
        ],
    )
    (run,) = sweep.runs
    assert (run.seed, run.teacher.epochs, run.options.tolerance, run.ratio) == (3, 2, 0.02, 0.8)
    assert run.recipe.name == "scratch-b"
    spec = {"a": [{"b": 1}]}
    apply_override(spec, "a.0.c=x")
    assert spec == {"a": [{"b": 1, "c": "x"}]}


def test_shipped_specs_parse():
    """Every spec in benchmarks/ is well formed and names only registered methods (all four are on main)."""
    from tasbench.pruner import pruner_names

    specs = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.yaml"))
    assert {p.stem for p in specs} >= {"proxy", "cifar10", "cifar100", "imagenet"}
    for path in specs:
        methods = {m["method"] for m in yaml.safe_load(path.read_text())["methods"]}
        assert methods <= set(pruner_names()), path.name
        assert load_sweep(path).runs


BAD_SPECS = [
    ("name: [unclosed", "is not valid YAML at line 1"),
    ("- just\n- a list", "must be a mapping of keys"),
    ("", "is empty; expected a mapping of keys"),
    ({"seed": [0]}, "unknown key 'seed'; allowed: name, description, data"),
    ({"methods": [{"method": "magic"}]}, "unknown pruning method 'magic'; allowed: "),
    ({"methods": [{"method": "uniform", "opts": {}}]}, "unknown key 'opts' in methods[0]; allowed: method, label"),
    ({"methods": [{"method": "uniform", "options": {"tol": 1}}]}, "unknown key 'tol' in methods[0].options"),
    ({"ratios": [0.5, 1.5]}, "ratios[1]: FLOP ratio 1.5 is outside (0, 1]"),
    ({"ratios": [0]}, "ratios[0]: FLOP ratio 0 is outside (0, 1]"),
    ({"ratios": ["half"]}, "'ratios' holds 'half', not a number"),
    ({"seeds": []}, "'seeds' is empty, so the sweep has no runs"),
    ({"methods": []}, "'methods' is empty, so the sweep has no runs"),
    ({"networks": ["resnet57"]}, "unknown network 'resnet57'"),
    ({"teacher": {"epochs": "ten"}}, "teacher.epochs must be int, got 'ten'"),
    ({"teacher": {"seed": 1}}, "teacher.seed is set per run from 'seeds'"),
    ({"recipes": [{"name": "rewind"}]}, "recipes[0]: unknown recipe 'rewind'"),
    ({"data": {"dataset": "mnist"}}, "data: unknown dataset 'mnist'"),
]


@pytest.mark.parametrize("change,message", BAD_SPECS, ids=[m[:40] for _, m in BAD_SPECS])
def test_bad_specs_are_one_clear_error(tmp_path, change, message):
    if isinstance(change, str):
        path = tmp_path / "bad.yaml"
        path.write_text(change)
    else:
        path = write_spec(tmp_path, **change)
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "pair,message",
    [
        ("seeds", "is not of the form key=value"),
        ("ratios.7=0.5", "'ratios.7' is not an index of a list of 2"),
        ("name.x=1", "'name.x' is inside a str, not a mapping"),
    ],
)
def test_bad_overrides(pair, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        apply_override(dict(TINY_SPEC, ratios=[0.5, 0.3]), pair)


def test_runs_that_cannot_work_are_named_before_anything_trains(tmp_path):
    """Each pruner's `check` hook, over a whole sweep: which runs are invalid, and why, in one line each."""
    from tasbench.runner.spec import invalid_runs

    methods = [
        {"method": "uniform"},
        {"method": "tas"},
        {"method": "l1"},
        {"method": "fpgm", "options": {"scope": "internal"}},
        {"method": "l1", "label": "L1 (A)", "options": {"variant": "A"}},
    ]
    spec = write_spec(tmp_path, ratios=[0.5, 0.01], methods=methods)
    runs = load_sweep(spec).runs  # per method: ratio 0.5, then 0.01
    invalid = invalid_runs(runs)
    assert sorted(invalid) == [3, 5, 7, 8, 9]  # uniform reaches 0.0025 of the FLOPs on ResNet-20; the rest do not
    assert invalid[3] == (
        "FLOP ratio 0.01 is below the smallest net this search can reach (0.0245 of the FLOPs with "
        "search='width+depth'); allowed: [0.0245, 1]"
    )
    assert invalid[5] == "FLOP ratio 0.01 is below what L1 pruning (scope 'internal') reaches (smallest net: 0.0539)"
    assert invalid[7] == "FLOP ratio 0.01 is below what FPGM pruning (scope 'internal') reaches (smallest net: 0.0539)"
    assert invalid[8] == invalid[9] and invalid[8].startswith(
        "L1 variant 'A' is defined for the full resnet56 and resnet110 only"
    )
    zero_pad = load_sweep(spec, ["methods=[{method: tas}]", "shortcut=zero-pad", "ratios=[0.5]"]).runs
    assert invalid_runs(zero_pad) == {
        0: "TAS searches nets with a projection shortcut (official, torchvision), not 'zero-pad'"
    }


def test_the_plan_shows_each_runs_budget(tmp_path):
    """The dry run's per-run line: teacher recipe, the pruning phase's training, the retraining epochs."""
    from tasbench.runner.cost import makespan, teacher_macs
    from tasbench.runner.plan import budget

    cifar = load_sweep(Path(__file__).parents[1] / "benchmarks" / "cifar10.yaml", ["methods.6.options={mode: soft}"])
    tas, fpgm, released = (next(c for c in cifar.runs if c.method == m) for m in ("tas", "fpgm", "released"))
    assert budget(tas) == (
        "teacher 305 ep (batch 256) | prune: search 600 ep x 98 steps (batch 256/half) | retrain: kd 305 ep (batch 256)"
    )  # 25,000 per half / 256, last batch kept
    assert budget(fpgm) == (
        "teacher 305 ep (batch 256) | prune: soft 10 ep x 390 steps (batch 128) | retrain: kd 305 ep (batch 256)"
    )
    assert budget(released) == (  # a fixed shape: its file, exact MACs and own ratio
        "teacher 305 ep (batch 256) | prune: one-shot (C010-ResNet20.config: 22,444,482 MACs, 0.5499) | "
        "retrain: kd 305 ep (batch 256)"
    )
    scratch_b = load_sweep(write_spec(tmp_path, ratios=[0.5], recipes=[{"name": "scratch-b", "epochs": 3}])).runs[0]
    assert budget(scratch_b) == "teacher 1 ep (batch 32) | prune: one-shot | retrain: scratch-b 6 ep (batch 128)"
    assert teacher_macs(scratch_b) == 1 * 40_813_194 * (3 * 64 + 32)  # 1 epoch of 64 training and 32 test images
    assert makespan([5, 1, 1, 1, 1], 2) == 5 and makespan([1, 1, 1, 5], 2) == 6 and makespan([2, 2], 1) == 4

"""The pruner contract, for every registered method on every CIFAR preset: a really smaller net inside its FLOP band.

Parametrized over `pruner_names()`, so a newly registered method is held to it without a new test: at FLOP ratios
0.3/0.5/0.7 (a released shape at its own ratio) its net's exact MACs lie in `pruner.band(options, ratio)`, it has
fewer MACs and parameters than the unpruned net, its module is `build_resnet(arch)`'s shape and runs, its `info`
is JSON, and a bad option value is one line that names it. A method must also say below how it runs cheaply.
"""

import dataclasses
import json

import pytest
import torch

from tas.released import ReleasedOptions, released_shape
from tasbench import overrides
from tasbench.errors import ConfigError
from tasbench.flops import macs, params
from tasbench.presets import PRESETS
from tasbench.pruner import PruneRequest, band_record, fixed_shape, get_pruner, needs_data, pruner_names
from tasbench.resnet import build_resnet, seeded_resnet

from helpers import random_data

CIFAR = [name for name in PRESETS if PRESETS[name]().family == "cifar"]  # resnet20/32/56/110/164
RATIOS = [0.3, 0.5, 0.7]
CLASSES = [10, 100]

# The options each method is tested with: cheap, and needing no data where the method can do without; a method
# that always reads data (`Pruner.needs_data`: Taylor's gradients) gets a few random images. TAS's learned search
# trains on data for epochs (its own tests: tests/test_tas_search.py); its random search draws a net in the same
# band, [ratio - flop_tolerance, ratio], from the same search space, in milliseconds. FPGM's default hard mode
# prunes once (soft mode trains); SFP's default is soft, so its hard mode (one L2-norm selection) stands here,
# its soft mode in tests/test_sfp.py; Taylor scores on one batch of 8. A new method must name its options here,
# even when they are the defaults.
CHEAP = {
    "uniform": {},
    "l1": {},
    "fpgm": {},
    "tp": {},
    "sfp": {"mode": "hard"},
    "taylor": {"batches": 1, "batch_size": 8},
    "tas": {"search": "random"},
    "released": {},
}


# A released shape is fixed and has its own ratio (C010-ResNet20: 0.5499); a run must ask for exactly that one.
def own_ratio(name: str, arch) -> float | None:
    if name != "released":
        return None
    return macs(released_shape(arch, ReleasedOptions())[0]) / macs(arch)


# One bad value per method's options, and the words of its one-line error (the value, or the option and value).
BAD_OPTION = {
    "uniform": ("tolerance", 0, "tolerance must be in (0, 0.5), got 0"),
    "l1": ("variant", "C", "unknown L1 variant 'C'; allowed: A, B"),
    "fpgm": ("mode", "gentle", "unknown FPGM mode 'gentle'; allowed: hard, soft"),
    "tp": ("importance", "l0", "unknown Torch-Pruning importance 'l0'; allowed: "),
    "sfp": ("mode", "gentle", "unknown SFP mode 'gentle'; allowed: hard, soft"),
    "taylor": ("batches", 0, "batches must be in [1, 100000], got 0"),
    "tas": ("search", "greedy", "unknown search 'greedy'; allowed: "),
    "released": ("config", "C010-ResNet21", "unknown released config 'C010-ResNet21'; allowed: "),
}

# Options that fix the shape by themselves and take no ratio (`fixed_shape`), with the nets they exist for.
FIXED = {"l1": ([{"variant": "A"}, {"variant": "B"}], ["resnet56", "resnet110"])}


def cases() -> list:
    out = []
    for name in pruner_names():
        for preset in CIFAR:
            for classes in CLASSES:
                own = own_ratio(name, PRESETS[preset](num_classes=classes))
                for ratio in [own] if own is not None else RATIOS:
                    out.append(pytest.param(name, preset, classes, ratio, id=f"{name}-{preset}-c{classes}-{ratio:.3f}"))
    return out


def check_built(out, full) -> None:
    """A really smaller net: fewer MACs and parameters, the builder's module for its arch, a forward pass."""
    assert macs(out.arch) < macs(full) and params(out.arch) < params(full)
    built = build_resnet(out.arch).state_dict()
    assert {k: v.shape for k, v in out.model.state_dict().items()} == {k: v.shape for k, v in built.items()}
    assert sum(p.numel() for p in out.model.parameters()) == params(out.arch)  # sliced, not masked
    with torch.no_grad():
        logits = out.model.eval()(torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert logits.shape == (2, full.num_classes) and torch.isfinite(logits).all()
    json.dumps(out.info, allow_nan=False)


def test_every_registered_method_is_named_in_the_contract_tables():
    assert set(CHEAP) == set(BAD_OPTION) == set(pruner_names())


@pytest.mark.parametrize("name,preset,classes,ratio", cases())
def test_pruned_net_is_inside_its_band_smaller_and_runs(name, preset, classes, ratio):
    pruner = get_pruner(name)
    options = pruner.options(**CHEAP[name])
    assert needs_data(pruner, options) == pruner.needs_data and not fixed_shape(pruner, options)
    full = PRESETS[preset](num_classes=classes)
    data = random_data(8, 8, classes) if pruner.needs_data else None
    out = pruner.prune(PruneRequest(full, seeded_resnet(full, 0), ratio, data=data, seed=0), options)
    target = pruner.band(options, ratio)
    flop_ratio = macs(out.arch) / macs(full)  # exact MACs of the decided arch
    assert target.ratio == ratio and target.low <= ratio <= target.high
    assert target.contains(flop_ratio), (target.rule, flop_ratio)
    record = band_record(pruner, options, ratio, flop_ratio)
    assert record == {"target_band": [target.low, target.high], "in_band": True, "band_rule": target.rule}
    json.dumps(record, allow_nan=False)
    check_built(out, full)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_a_fixed_shape_takes_no_ratio_and_records_no_band(name):
    pruner = get_pruner(name)
    variants, presets = FIXED[name]
    for opts in variants:
        options = pruner.options(**opts)
        assert fixed_shape(pruner, options) and pruner.band(options, 0.5) is None
        for preset in presets:
            full = PRESETS[preset]()
            out = pruner.prune(PruneRequest(full, seeded_resnet(full, 0), None, seed=0), options)
            check_built(out, full)
            assert band_record(pruner, options, 0.5, macs(out.arch) / macs(full))["in_band"] is None


@pytest.mark.parametrize("name", pruner_names())
def test_a_bad_option_value_is_one_line_naming_it(name):
    pruner = get_pruner(name)
    key, value, message = BAD_OPTION[name]
    with pytest.raises(ConfigError) as direct:
        pruner.options(**{key: value})
    with pytest.raises(ConfigError) as parsed:  # as `--opt KEY=VALUE` and a sweep spec's options give it
        overrides.parse_overrides(pruner.options, [f"{key}={value}"])
    for error in (direct, parsed):
        text = str(error.value)
        assert "\n" not in text and text.startswith(message) and str(value) in text
    fields = [f.name for f in dataclasses.fields(pruner.options)]
    with pytest.raises(
        ConfigError, match=f"^unknown {pruner.options.__name__} key 'nosuch'; allowed: {', '.join(fields)}$"
    ):
        overrides.parse_overrides(pruner.options, ["nosuch=1"])

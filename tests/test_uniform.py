"""The pruner interface and uniform width scaling: FLOP targets met within 1%, a really smaller net."""

import dataclasses

import pytest
import torch

from baselines.uniform import UniformOptions, uniform_arch
from tasbench.arch import block_specs
from tasbench.errors import ConfigError
from tasbench.flop_target import scale_widths
from tasbench.flops import count_macs, macs
from tasbench.presets import PRESETS
from tasbench.pruner import Pruner, PruneRequest, band_record, get_pruner, needs_data, pruner_names
from tasbench.resnet import build_resnet

from helpers import random_data

RATIOS = [0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0]
SHAPES = [(n, "official") for n in PRESETS] + [(n, "zero-pad") for n in PRESETS if PRESETS[n]().family == "cifar"]


@pytest.mark.parametrize("name,shortcut", SHAPES)
def test_uniform_hits_every_target_within_one_percent(name, shortcut):
    full = PRESETS[name](shortcut=shortcut)
    for ratio in RATIOS:
        arch, _ = uniform_arch(full, ratio)
        assert abs(macs(arch) / (ratio * macs(full)) - 1) <= 0.01, (name, ratio)
        # still a uniform net: the residual widths of each stage stay equal, so no projection appears
        assert [s.shortcut for s in block_specs(arch)] == [s.shortcut for s in block_specs(full)], (name, ratio)


def test_uniform_through_the_registry_returns_a_smaller_built_net():
    pruner = get_pruner("uniform")
    full = PRESETS["resnet56"]()
    out = pruner.prune(PruneRequest(full, build_resnet(full), 0.5, seed=3), pruner.options())
    assert sum(count_macs(out.model, 32).values()) == macs(out.arch)
    assert abs(macs(out.arch) / macs(full) - 0.5) <= 0.005
    assert out.model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert out.info["inherits_weights"] is False and 0.5 < out.info["factor"] < 0.8
    again = pruner.prune(PruneRequest(full, build_resnet(full), 0.5, seed=3), pruner.options())
    assert all(torch.equal(a, b) for a, b in zip(out.model.parameters(), again.model.parameters()))


def test_resnet20_at_half_the_flops():
    # Widths 16/32/64 times 0.71 round to 11/23/45: 49.6% of the 40.81 M MACs, no channel filling needed.
    arch, info = uniform_arch(PRESETS["resnet20"](), 0.5)
    assert arch.xchannels == (3,) + (11,) * 7 + (23,) * 6 + (45,) * 6
    by_hand = (
        9 * 3 * 11 * 1024
        + 6 * 9 * 11 * 11 * 1024  # stem, stage 1 at 32x32
        + (9 * 11 * 23 + 5 * 9 * 23 * 23 + 11 * 23) * 256  # stage 2 at 16x16 with its 1x1 projection
        + (9 * 23 * 45 + 5 * 9 * 45 * 45 + 23 * 45) * 64  # stage 3 at 8x8
        + 45 * 10
        + 10  # classifier
    )
    assert macs(arch) == by_hand == 20_231_564 and info["filled_channels"] == 0


def test_filling_closes_a_rounding_gap():
    # At 0.35 of ResNet-20 the factor alone jumps over the 1% band; block-internal convs take channels to close it.
    full = PRESETS["resnet20"]()
    arch, info = uniform_arch(full, 0.35)
    assert info["filled_channels"] > 0
    assert abs(macs(arch) / (0.35 * macs(full)) - 1) <= 0.01
    assert macs(scale_widths(full, info["factor"])) < 0.99 * 0.35 * macs(full)


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.01, float("nan")])
def test_ratio_outside_unit_interval_is_named(ratio):
    full = PRESETS["resnet20"]()
    with pytest.raises(ConfigError, match="is outside \\(0, 1\\]"):
        PruneRequest(full, build_resnet(full), ratio)


def test_unreachable_ratio_and_unknown_method_are_named():
    with pytest.raises(ConfigError, match="below what uniform scaling reaches"):
        uniform_arch(PRESETS["resnet20"](), 0.0001)
    with pytest.raises(ConfigError, match="unknown pruning method 'magic'; allowed: .*uniform"):
        get_pruner("magic")
    with pytest.raises(ConfigError, match="tolerance must be in"):
        UniformOptions(tolerance=0)


def test_every_registered_pruner_loads_under_its_own_name_with_frozen_defaulted_options():
    assert set(pruner_names()) >= {"uniform", "tas", "released", "l1", "fpgm"}
    for name in pruner_names():
        pruner = get_pruner(name)
        options = pruner.options()  # every field has a default: a spec may name the method alone
        assert pruner.name == name and dataclasses.is_dataclass(options) and pruner.summary
        field = dataclasses.fields(options)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):  # options are part of a run's hashed identity
            setattr(options, field, getattr(options, field))


# Each registered pruner's FLOP band at ratio 0.5 with default options: relative +-1% for the FLOP-matching
# pruners, [ratio - 0.05, ratio] for TAS. A new pruner must say its band, and its rule in words, here.
BANDS = {
    "uniform": (0.495, 0.505),
    "l1": (0.495, 0.505),
    "fpgm": (0.495, 0.505),
    "sfp": (0.495, 0.505),
    "taylor": (0.495, 0.505),
    "tp": (0.495, 0.505),
    "tas": (0.45, 0.5),
    "released": (0.549, 0.551),
}
RULES = {
    "uniform": "within 1% of 0.5, either side",
    "l1": "within 1% of 0.5, either side",
    "fpgm": "within 1% of 0.5, either side",
    "sfp": "within 1% of 0.5, either side",
    "taylor": "within 1% of 0.5, either side",
    "tp": "within 1% of 0.5, either side",
    "tas": "at most 0.5, at least 0.45",
    "released": "within 0.001 of 0.55, either side",
}
# The learned search needs data, the random one draws a net in its band; SFP's hard mode prunes once. Taylor always
# reads data: it gets a few random images.
NO_DATA = {"tas": {"search": "random"}, "sfp": {"mode": "hard"}, "taylor": {"batches": 1, "batch_size": 8}}
TARGET = {"released": 0.55}  # a released shape runs at its own ratio (C010-ResNet20: 0.5499)


@pytest.mark.parametrize("name", pruner_names())
def test_every_pruner_names_its_flop_band_and_its_net_lies_inside(name):
    pruner = get_pruner(name)
    options = pruner.options(**NO_DATA.get(name, {}))
    target = TARGET.get(name, 0.5)
    band = pruner.band(options, target)
    assert (band.ratio, band.rule) == (target, RULES[name]) and (band.low, band.high) == pytest.approx(BANDS[name])
    full = PRESETS["resnet20"]()
    data = random_data(8, 8) if needs_data(pruner, options) else None
    out = pruner.prune(PruneRequest(full, build_resnet(full), target, data=data, seed=1), options)
    ratio = macs(out.arch) / macs(full)
    record = band_record(pruner, options, target, ratio)
    assert record["target_band"] == pytest.approx(list(BANDS[name])) and record["in_band"] is True
    assert record["band_rule"] == RULES[name]
    assert band_record(pruner, options, target, band.low - 1e-9)["in_band"] is False
    assert band_record(pruner, options, target, band.high + 1e-9)["in_band"] is False
    assert band.contains(band.low) and band.contains(band.high) and not band.contains(band.high + 1e-9)


def test_a_fixed_shape_has_no_band_and_a_pruner_without_the_hook_records_none():
    l1 = get_pruner("l1")
    assert band_record(l1, l1.options(variant="B"), 0.724, 0.7244) == {
        "target_band": None,
        "in_band": None,
        "band_rule": "a fixed shape: no FLOP target",
    }
    assert band_record(get_pruner("tas"), get_pruner("tas").options(), 0.7, 0.516)["in_band"] is False
    silent = Pruner("silent", get_pruner("uniform").prune, UniformOptions)
    assert band_record(silent, UniformOptions(), 0.5, 0.5) == {}

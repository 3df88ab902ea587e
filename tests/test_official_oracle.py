"""The TAS release's own numbers, case by case: unpruned nets, inferred nets, and the search's two FLOP figures.

`tests/data/tas_official_oracle.json` was produced by running the released code (D-X-Y/AutoDL-Projects,
`SearchCifarResNet`, `InferCifarResNet`, `CifarResNet`) on CIFAR ResNet-20/32/56/110/164 with 10 and 100 classes and
7 settings of the width/depth logits each; it holds numbers only. Per case: the release's expected FLOPs (what its
FLOP loss differentiates), its current FLOPs (the argmax net's, which pick the loss's branch), the genotype it
derives, and MACs/params of the net it builds for that genotype. The released `.config` files add one more check:
their `estimated_FLOP` is the release's current FLOPs of the shape.
"""

import json
from pathlib import Path

import pytest
import torch

from tas.flop_loss import FLOP_COUNTS, ExpectedFlops
from tas.search_model import SearchResNet
from tas.search_space import choices, search_space
from tasbench.errors import ConfigError
from tasbench.flops import count_macs, macs, params
from tasbench.official_config import read_tas_config
from tasbench.presets import cifar_resnet
from tasbench.resnet import build_resnet
from tasbench.testing import count_params

from conftest import COMPARE_CONFIGS, OFFICIAL_CONFIGS

ORACLE = json.loads((Path(__file__).parent / "data" / "tas_official_oracle.json").read_text())
NETS = {f"resnet{n['depth']}-{n['classes']}": n for n in ORACLE["nets"]}
CASES = [
    pytest.param(name, i, id=f"{name}-{case['setting']}")
    for name, net in NETS.items()
    for i, case in enumerate(net["cases"])
]


def unpruned(name: str):
    net = NETS[name]
    arch = cifar_resnet(net["depth"], net["classes"])
    assert arch.block == {"ResNetBasicblock": "basic", "ResNetBottleneck": "bottleneck"}[net["block"]]
    return arch


def inferred(name: str, case: dict):
    return unpruned(name).replace(xchannels=tuple(case["genotype_xchannels"]), xblocks=tuple(case["genotype_xblocks"]))


def test_the_oracle_covers_every_net_and_setting():
    assert sorted(NETS) == sorted(f"resnet{d}-{c}" for d in (20, 32, 56, 110, 164) for c in (10, 100))
    assert len(CASES) == 70 and {len(n["cases"]) for n in NETS.values()} == {7}


@pytest.mark.parametrize("name", NETS)
def test_unpruned_nets_equal_the_release(name):
    arch, net = unpruned(name), NETS[name]
    model = build_resnet(arch)
    assert macs(arch) == sum(count_macs(model, 32).values()) == net["unpruned_macs"]
    assert params(arch) == count_params(model) == net["unpruned_params"]
    assert [list(c) for c in search_space(arch).widths] == net["width_candidates"]


@pytest.mark.parametrize("name, index", CASES)
def test_inferred_nets_equal_the_release(name, index):
    case = NETS[name]["cases"][index]
    arch = inferred(name, case)
    model = build_resnet(arch)
    assert macs(arch) == sum(count_macs(model, 32).values()) == case["inferred_macs"]
    assert params(arch) == count_params(model) == case["inferred_params"]


_MODELS: dict[tuple[str, str], SearchResNet] = {}


def search_model(name: str, count: str, case: dict) -> SearchResNet:
    """The search net of `name` (built once per net and count) holding the case's logits, in float64."""
    if (name, count) not in _MODELS:
        _MODELS[name, count] = SearchResNet(search_space(unpruned(name)), flop_count=count).double()
    model = _MODELS[name, count]
    with torch.no_grad():
        model.width_logits.copy_(torch.tensor(case["width_logits"], dtype=torch.float64))
        model.depth_logits.copy_(torch.tensor(case["depth_logits"], dtype=torch.float64))
    return model


@pytest.mark.parametrize("count", FLOP_COUNTS)
@pytest.mark.parametrize("name, index", CASES)
def test_search_flops_and_derived_shape(name, index, count):
    case = NETS[name]["cases"][index]
    model = search_model(name, count, case)
    derived = model.derive()
    assert derived == inferred(name, case)  # the same genotype, whichever count steers the loss
    expected, current = model.expected_flops().item(), model.argmax_flops().item()
    if count == "official":
        # The release sums float32 MFLOPs: its expected figure carries ~1e-7 of rounding.
        assert expected == pytest.approx(case["official_expected_macs"], rel=1e-6)
        assert current == round(case["official_current_macs"])
    else:
        assert current == macs(derived) == case["inferred_macs"]
        # The engine's expectation counts the projections width mismatches create, which the release leaves out.
        assert expected > case["official_expected_macs"] * (1.5 if NETS[name]["block"] == "ResNetBottleneck" else 0.99)


def space_of(arch):
    """The search space of the unpruned CIFAR net that `arch` prunes."""
    return search_space(cifar_resnet(2 + sum(arch.layers) * arch.convs_per_block, arch.num_classes))


@pytest.mark.parametrize(
    "path", [p for p in OFFICIAL_CONFIGS + COMPARE_CONFIGS if "ImageNet" not in p.stem], ids=lambda p: p.stem
)
def test_released_estimates_are_the_official_current_flops(path):
    """Each released CIFAR file's `estimated_FLOP` is the release's current FLOPs of its shape (`get_flop`), which
    `flop_count=official` reproduces to the file's last digit, depth-pruned shapes included."""
    arch = read_tas_config(path)
    space = space_of(arch)
    if path.stem == "CIFAR100-FIX-R32":  # pre-defined widths: 50 channels is not a candidate of a 64-wide conv
        with pytest.raises(ConfigError, match="not in the TAS search space"):
            choices(space, arch)
        return
    widths, depths = choices(space, arch)
    current = ExpectedFlops(space, "official").current(torch.tensor(widths), torch.tensor(depths)).item()
    text = json.loads(path.read_text())["estimated_FLOP"][1]  # MFLOPs, e.g. "57.52595"
    precision = 0.5 * 10 ** -len(text.split(".")[1]) * 1e6  # C100-ResNet32 stores only "42.47"
    assert abs(current - float(text) * 1e6) <= max(precision, 0.5)
    if arch.xblocks != arch.layers:
        assert current != macs(arch) - arch.num_classes  # depth-pruned: not the built net's count

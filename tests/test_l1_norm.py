"""L1-norm (PFEC): Li et al.'s variants A/B reproduce the paper's FLOP reductions; the kept filters are the largest."""

import pytest
import torch

from baselines.l1_norm import L1Options, l1_scores, prune_l1, variant_counts
from tasbench.errors import ConfigError
from tasbench.flops import count_macs, macs
from tasbench.presets import resnet20, resnet56, resnet110
from tasbench.pruner import PruneRequest
from tasbench.resnet import seeded_resnet

from helpers import tiny_arch

# Li et al. (2017) Table 2 (zero-pad "option A" shortcuts): FLOPs of the pruned net and the reduction, in percent.
PAPER = {
    ("resnet56", "A"): (1.12e8, 10.4),
    ("resnet56", "B"): (9.09e7, 27.6),
    ("resnet110", "A"): (2.13e8, 15.9),
    ("resnet110", "B"): (1.55e8, 38.6),
}
# Counted by our engine: (unpruned, pruned) MACs for the zero-pad and the official (TAS) shortcut.
COUNTED = {
    ("resnet56", "A"): {"zero-pad": (125_485_706, 112_435_850), "official": (125_747_850, 112_697_994)},
    ("resnet56", "B"): {"zero-pad": (125_485_706, 90_907_274), "official": (125_747_850, 91_169_418)},
    ("resnet110", "A"): {"zero-pad": (252_887_690, 212_779_658), "official": (253_149_834, 213_041_802)},
    ("resnet110", "B"): {"zero-pad": (252_887_690, 155_124_362), "official": (253_149_834, 155_386_506)},
}
NETS = {"resnet56": resnet56, "resnet110": resnet110}


@pytest.mark.parametrize("shortcut", ["zero-pad", "official"])
@pytest.mark.parametrize("net,variant", list(PAPER))
def test_variants_reproduce_the_papers_flop_reductions(net, variant, shortcut):
    full = NETS[net](shortcut=shortcut)
    out = prune_l1(PruneRequest(full, seeded_resnet(full, 0), None), L1Options(variant=variant))  # no ratio
    assert (macs(full), macs(out.arch)) == COUNTED[net, variant][shortcut]
    assert sum(count_macs(out.model, 32).values()) == macs(out.arch)
    flops, reduction = PAPER[net, variant]
    if shortcut == "zero-pad":  # the paper's net: its FLOPs to the three digits printed, its reduction to 0.1 points
        assert f"{macs(out.arch):.2e}" == f"{flops:.2e}"
        assert abs(100 * (1 - macs(out.arch) / macs(full)) - reduction) < 0.1


def test_resnet56_b_shape():
    # 60/30/10% of the first convs of stages 1/2/3 removed, int(C * (1 - p)) kept; layers 16, 18, 20, 34, 38, 54 kept.
    counts = variant_counts(resnet56(shortcut="zero-pad"), "B")
    assert sorted(set(counts.values())) == [6, 22, 57]
    assert [s for s in range(2, 56, 2) if s not in counts] == [16, 18, 20, 34, 38, 54]
    assert counts[2] == counts[14] == 6 and counts[22] == 22 and counts[40] == 57
    assert variant_counts(resnet110(), "A") == {s: 8 for s in range(2, 38, 2) if s != 36}


def test_kept_filters_have_the_largest_l1_norms():
    full = resnet56()
    model = seeded_resnet(full, 0)
    convs = dict(model.named_modules())
    for options in (L1Options(variant="B"), L1Options()):
        out = prune_l1(PruneRequest(full, model, 0.5), options)
        assert out.info["kept"]
        for name, kept in out.info["kept"].items():
            norms = convs[name].weight.detach().abs().sum(dim=(1, 2, 3))  # computed here, independently
            removed = [c for c in range(len(norms)) if c not in kept]
            assert norms[kept].min() >= norms[removed].max(), name


def test_kept_indices_on_a_seeded_tiny_net():
    out = prune_l1(PruneRequest(tiny_arch(), seeded_resnet(tiny_arch(), 0), 0.5), L1Options())
    assert out.arch.xchannels == (3, 4, 2, 4, 2, 4, 2, 4, 4, 8, 4, 8, 4, 8, 7, 16, 7, 16, 7, 16)
    assert macs(out.arch) == 1_329_834 and out.info["filled_channels"] == 6
    assert out.info["factor"] == pytest.approx(0.5)
    assert out.info["kept"] == {
        "stages.0.0.convs.0": [1, 2],
        "stages.0.1.convs.0": [2, 3],
        "stages.0.2.convs.0": [0, 3],
        "stages.1.0.convs.0": [4, 5, 6, 7],
        "stages.1.1.convs.0": [1, 2, 5, 6],
        "stages.1.2.convs.0": [1, 3, 6, 7],
        "stages.2.0.convs.0": [0, 3, 6, 10, 11, 12, 13],
        "stages.2.1.convs.0": [3, 6, 7, 10, 11, 13, 15],
        "stages.2.2.convs.0": [1, 2, 3, 9, 12, 13, 15],
    }


def test_l1_scores():
    w = torch.tensor([[[[1.0, -2.0]]], [[[0.5, 0.5]]]])
    assert l1_scores(w).tolist() == [3.0, 1.0]


def test_variant_errors_name_the_value():
    with pytest.raises(ConfigError, match="unknown L1 variant 'C'; allowed: A, B"):
        L1Options(variant="C")
    with pytest.raises(ConfigError, match="L1 variant 'A' is defined for the full resnet56 and resnet110 only"):
        variant_counts(resnet20(), "A")
    with pytest.raises(ConfigError, match="defined for the full resnet56"):  # a thinned ResNet-56 has no variant
        variant_counts(resnet56().replace(xblocks=(9, 9, 8)), "B")

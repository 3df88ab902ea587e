"""Channel groups and slicing: a pruned net computes what the unpruned net computes with those channels zeroed."""

import copy

import pytest
import torch

from baselines.channel_groups import (
    channel_groups,
    keep_from_groups,
    layer_slots,
    pruned_arch,
    slice_resnet,
    zero_channels,
)
from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flops import count_macs, macs, params
from tasbench.official_config import read_tas_config
from tasbench.presets import resnet20, resnet164
from tasbench.resnet import seeded_resnet
from tasbench.testing import count_params

from conftest import OFFICIAL_CONFIGS
from helpers import tiny_arch, tiny_bottleneck


def released(name: str) -> Arch:
    return read_tas_config(OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index(name)])


SHAPES = {
    "tiny": tiny_arch(),
    "tiny-zero-pad": tiny_arch().replace(shortcut="zero-pad"),
    "tiny-bottleneck": tiny_bottleneck(),
    "tiny-depth-pruned": tiny_arch().replace(xblocks=(2, 3, 1)),
    "C010-ResNet20": released("C010-ResNet20"),  # uneven widths: projections inside a stage
}


def test_groups_of_resnet20():
    groups = channel_groups(resnet20())
    assert [(g.slots, len(g.channels), g.internal) for g in groups] == [
        ((1, 3, 5, 7), 16, False),
        ((2,), 16, True),
        ((4,), 16, True),
        ((6,), 16, True),
        ((8,), 32, True),
        ((9, 11, 13), 32, False),
        ((10,), 32, True),
        ((12,), 32, True),
        ((14,), 64, True),
        ((15, 17, 19), 64, False),
        ((16,), 64, True),
        ((18,), 64, True),
    ]


def test_zero_pad_ties_channels_across_stages():
    # Option A appends zero channels: stem channel c (c < 16) is channel c of every later stage's chain too.
    residual = [(g.slots, g.channels) for g in channel_groups(resnet20(shortcut="zero-pad")) if not g.internal]
    assert residual == [
        ((1, 3, 5, 7, 9, 11, 13, 15, 17, 19), tuple(range(16))),
        ((9, 11, 13, 15, 17, 19), tuple(range(16, 32))),
        ((15, 17, 19), tuple(range(32, 64))),
    ]


def test_bottleneck_stem_is_its_own_group():
    residual = [(g.slots[:3], len(g.channels)) for g in channel_groups(resnet164()) if not g.internal]
    assert residual == [((1,), 16), ((4, 7, 10), 64), ((58, 61, 64), 128), ((112, 115, 118), 256)]


@pytest.mark.parametrize("name", SHAPES)
def test_every_channel_is_in_one_group_per_slot(name):
    arch = SHAPES[name]
    seen = {}
    for g in channel_groups(arch):
        for slot in g.slots:
            for c in g.channels:
                assert (slot, c) not in seen, (slot, c)
                seen[slot, c] = g
    used = {o for o, _ in layer_slots(arch).values() if o is not None}
    assert set(seen) == {(s, c) for s in used for c in range(arch.xchannels[s])}


def randomise_bn(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial BN statistics and affine terms, so that a wrongly sliced BN channel changes the output."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def random_keep(arch: Arch, seed: int) -> dict[int, list[int]]:
    """Each group keeps a random non-empty subset of its channels (about half)."""
    g = torch.Generator().manual_seed(seed)
    groups = channel_groups(arch)
    kept = []
    for group in groups:
        n = len(group.channels)
        k = max(1, n // 2 + int(torch.randint(-1, 2, (), generator=g)))
        kept.append(sorted(group.channels[i] for i in torch.randperm(n, generator=g)[: min(k, n)].tolist()))
    return keep_from_groups(groups, kept)


@pytest.mark.parametrize("name", SHAPES)
def test_sliced_net_equals_the_zeroed_net(name):
    arch = SHAPES[name]
    model = seeded_resnet(arch, 1)
    randomise_bn(model, 2)
    keep = random_keep(arch, 3)
    new_arch, small = slice_resnet(model, arch, keep)
    masked = copy.deepcopy(model)
    zero_channels(masked, arch, keep, bn=True)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    small.eval(), masked.eval(), model.eval()
    with torch.no_grad():
        expected, got, unpruned = masked(x), small(x), model(x)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got, unpruned, atol=1e-3)  # the zeroed channels did matter
    assert new_arch == pruned_arch(arch, keep) and sum(count_macs(small, 32).values()) == macs(new_arch) < macs(arch)


def test_slicing_keeps_exactly_the_named_channels():
    arch = tiny_arch()
    model = seeded_resnet(arch, 0)
    groups = channel_groups(arch)
    keep = keep_from_groups(groups, [list(g.channels[1::2]) for g in groups])  # every odd channel
    new_arch, small = slice_resnet(model, arch, keep)
    assert new_arch.xchannels == (3,) + (2,) * 7 + (4,) * 6 + (8,) * 6
    old, new = dict(model.named_modules()), dict(small.named_modules())
    w = old["stages.1.0.convs.1"].weight  # slot 9 (out) reads slot 8 (in); both keep channels 1, 3, 5, 7
    assert torch.equal(new["stages.1.0.convs.1"].weight, w[[1, 3, 5, 7]][:, [1, 3, 5, 7]])
    projection = old["stages.1.0.shortcut.conv"].weight  # reads slot 7, which keeps channels 1 and 3 of 4
    assert torch.equal(new["stages.1.0.shortcut.conv"].weight, projection[[1, 3, 5, 7]][:, [1, 3]])
    assert torch.equal(new["fc"].weight, old["fc"].weight[:, 1::2])


def test_a_split_residual_group_is_refused():
    # Cutting the stem (slot 1) but not the rest of its chain would need a projection that the net does not have.
    arch = tiny_arch()
    with pytest.raises(ConfigError, match="a residual group was split"):
        slice_resnet(seeded_resnet(arch, 0), arch, {1: [0, 1, 2]})


def test_slicing_the_unpruned_resnet164_drops_the_bn_its_pruned_nets_lack():
    # The release's unpruned ResNet-164 has a BN after its one stride-1 projection (16 -> 64), its pruned nets none.
    arch = resnet164()
    model = seeded_resnet(arch, 0)
    groups = channel_groups(arch)
    keep = keep_from_groups(groups, [list(g.channels[: len(g.channels) // 2 if g.internal else None]) for g in groups])
    new_arch, small = slice_resnet(model, arch, keep)
    old, new = dict(model.named_modules()), dict(small.named_modules())
    assert "stages.0.0.shortcut.bn" in old and "stages.0.0.shortcut.bn" not in new
    assert torch.equal(new["stages.0.0.shortcut.conv"].weight, old["stages.0.0.shortcut.conv"].weight)
    assert count_params(small) == params(new_arch) and new_arch.xchannels[1] == 16

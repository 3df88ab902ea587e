"""Property tests (hypothesis): every valid architecture config builds, runs, round-trips through JSON, and has
analytic FLOPs and parameters equal to those counted on the built module.

The configs are drawn over both families and block types, 1-3 blocks per stage (any number of them kept), widths
1-8 per conv (so shapes that no preset has: 1-channel convs, bottlenecks that widen, stages that shrink), any class
count and both shortcuts. Zero-pad shortcuts cannot shrink channels, so for them the widths are drawn sorted.
"""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tasbench.arch import BLOCK_KERNELS, NUM_STAGES, Arch
from tasbench.flops import count_macs, layer_macs, macs, params
from tasbench.resnet import build_resnet
from tasbench.testing import count_params


@st.composite
def archs(draw) -> Arch:
    family = draw(st.sampled_from(["cifar", "imagenet"]))
    block = draw(st.sampled_from(["basic", "bottleneck"]))
    stages = NUM_STAGES[family]
    layers = draw(st.lists(st.integers(1, 3 if family == "cifar" else 2), min_size=stages, max_size=stages))
    xblocks = [draw(st.integers(1, n)) for n in layers]
    convs = 1 + sum(layers) * len(BLOCK_KERNELS[block])  # the stem, then every block's convs
    widths = draw(st.lists(st.integers(1, 8), min_size=convs, max_size=convs))
    shortcut = draw(st.sampled_from(["official", "zero-pad"])) if family == "cifar" else "official"
    if shortcut == "zero-pad":
        widths.sort()
    return Arch(family, block, tuple(layers), tuple(xblocks), (3, *widths), draw(st.integers(1, 12)), shortcut)


@settings(max_examples=40, deadline=None)
@given(archs())
def test_any_valid_arch_builds_runs_and_counts_exactly(arch):
    assert Arch.from_dict(arch.to_dict()) == arch
    model = build_resnet(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, arch.image_size, arch.image_size, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, arch.num_classes) and torch.isfinite(out).all()
    counted = count_macs(model, arch.image_size)
    assert counted == layer_macs(arch)  # layer by layer, by module name
    assert sum(counted.values()) == macs(arch) and count_params(model) == params(arch)

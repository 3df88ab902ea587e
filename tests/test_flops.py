"""FLOPs (MACs) and parameter counts: analytic from the Arch, measured by hooks, PyTorch's counter, torchvision."""

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from tasbench.arch import block_specs
from tasbench.flops import conv_macs, count_macs, layer_macs, macs, params
from tasbench.official_config import read_tas_config
from tasbench.presets import PRESETS
from tasbench.resnet import build_resnet
from tasbench.testing import count_params

from conftest import COMPARE_CONFIGS, OFFICIAL_CONFIGS

CIFAR = [n for n, f in PRESETS.items() if f().family == "cifar"]
SHAPES = [(n, "official") for n in PRESETS] + [(n, "zero-pad") for n in CIFAR]

# Exact counts of the unpruned nets (10 / 1000 classes). Cross-checked three ways below: the hook counter, PyTorch's
# FlopCounterMode, and the paper's rounded figures; ResNet-20 is also derived by hand in its own test. The official
# CIFAR rows are the TAS release's own counts too (`test_official_oracle.py`: its nets have no BN after a strided
# projection), the ImageNet rows torchvision's.
EXACT = {
    ("resnet20", "official"): (40_813_194, 272_282),
    ("resnet32", "official"): (69_124_746, 466_714),
    ("resnet56", "official"): (125_747_850, 855_578),
    ("resnet110", "official"): (253_149_834, 1_730_522),
    ("resnet164", "official"): (247_646_730, 1_703_386),
    ("resnet20", "zero-pad"): (40_551_050, 269_722),
    ("resnet32", "zero-pad"): (68_862_602, 464_154),
    ("resnet56", "zero-pad"): (125_485_706, 853_018),
    ("resnet110", "zero-pad"): (252_887_690, 1_727_962),
    ("resnet164", "zero-pad"): (242_403_850, 1_661_274),
    ("resnet18", "official"): (1_814_074_344, 11_689_512),
    ("resnet50", "official"): (4_089_185_256, 25_557_032),
}
# The TAS paper / reference notes, in MFLOPs with 2 decimals (official shortcut; zero-pad for ResNet-56/110).
PAPER_MFLOPS = {
    ("resnet20", "official"): 40.81,
    ("resnet32", "official"): 69.12,
    ("resnet56", "official"): 125.75,
    ("resnet110", "official"): 253.15,
    ("resnet164", "official"): 247.65,
    ("resnet56", "zero-pad"): 125.49,
    ("resnet110", "zero-pad"): 252.89,
}
# The 12 released shapes: exact MACs and params of the net they build.
EXACT_CONFIGS = {
    "C010-ResNet20": (22_444_482, 228_130),
    "C010-ResNet32": (34_945_354, 320_539),
    "C010-ResNet56": (59_858_440, 449_307),
    "C010-ResNet110": (119_259_268, 795_864),
    "C010-ResNet164": (178_071_234, 1_277_931),
    "C100-ResNet20": (22_433_892, 241_237),
    "C100-ResNet32": (42_468_708, 427_330),
    "C100-ResNet56": (61_233_936, 470_977),
    "C100-ResNet110": (119_578_384, 843_653),
    "C100-ResNet164": (171_143_892, 1_325_258),
    "ImageNet-ResNet18V1": (1_210_758_120, 11_275_098),
    "ImageNet-ResNet50V1": (2_309_249_169, 18_624_362),
}
# The 7 shapes of `official_configs/compares/`: the paper's CIFAR-10 ResNet-56 row counts 59.45M (the main release's
# C010-ResNet56 59.86M); the TAS-R110 and CIFAR100-TAS-R56 files are the main release's shapes again; FIX, RAND and
# TAS-R32 are the pre-defined, random and searched widths of the CIFAR-100 ResNet-32 ablation (infer-width files).
EXACT_COMPARES = {
    "CIFAR010-TAS-R110": (119_259_268, 795_864),
    "CIFAR010-TAS-R56": (59_451_400, 441_494),
    "CIFAR100-FIX-R32": (41_095_916, 288_773),
    "CIFAR100-RAND-R32": (42_909_096, 336_406),
    "CIFAR100-TAS-R110": (119_578_384, 843_653),
    "CIFAR100-TAS-R32": (42_493_284, 427_362),
    "CIFAR100-TAS-R56": (61_233_936, 470_977),
}


def _all_archs():
    for name, shortcut in SHAPES:
        yield pytest.param(PRESETS[name](shortcut=shortcut), id=f"{name}-{shortcut}")
    for path in OFFICIAL_CONFIGS + COMPARE_CONFIGS:
        yield pytest.param(read_tas_config(path), id=path.stem)


ALL_ARCHS = list(_all_archs())


def torch_flop_counter_macs(model, arch) -> int:
    """PyTorch's own count: FLOPs / 2 of the matmuls and convs, plus the bias adds it leaves out."""
    x = torch.zeros(1, 3, arch.image_size, arch.image_size)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    biases = sum(m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None)
    return counter.get_total_flops() // 2 + biases


def test_resnet20_by_hand():
    # stem 3->16 at 32x32; stage 1: 6 convs 16->16 at 32x32; stage 2: 16->32 at 16x16, 5 convs 32->32, and the
    # 1x1 16->32 projection at 16x16; stage 3 likewise at 8x8; fc 64*10 + 10 biases.
    expected = (
        9 * 3 * 16 * 32 * 32
        + 6 * 9 * 16 * 16 * 32 * 32
        + 9 * 16 * 32 * 16 * 16
        + 5 * 9 * 32 * 32 * 16 * 16
        + 16 * 32 * 16 * 16
        + 9 * 32 * 64 * 8 * 8
        + 5 * 9 * 64 * 64 * 8 * 8
        + 32 * 64 * 8 * 8
        + 64 * 10
        + 10
    )
    assert expected == 40_813_194
    assert macs(PRESETS["resnet20"]()) == expected


@pytest.mark.parametrize("name,shortcut", SHAPES)
def test_exact_counts_of_presets(name, shortcut):
    arch = PRESETS[name](shortcut=shortcut)
    assert (macs(arch), params(arch)) == EXACT[(name, shortcut)]
    if (name, shortcut) in PAPER_MFLOPS:
        assert round(macs(arch) / 1e6, 2) == PAPER_MFLOPS[(name, shortcut)]


@pytest.mark.parametrize("path", OFFICIAL_CONFIGS + COMPARE_CONFIGS, ids=lambda p: p.stem)
def test_exact_counts_of_released_shapes(path):
    arch = read_tas_config(path)
    assert (macs(arch), params(arch)) == {**EXACT_CONFIGS, **EXACT_COMPARES}[path.stem]


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_analytic_equals_measured_per_layer(arch):
    model = build_resnet(arch)
    assert count_macs(model, arch.image_size) == layer_macs(arch)
    assert count_params(model) == params(arch)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_measured_equals_torch_flop_counter(arch):
    model = build_resnet(arch)
    assert torch_flop_counter_macs(model, arch) == macs(arch)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_imagenet_presets_match_torchvision(name):
    reference = getattr(torchvision.models, name)()
    arch = PRESETS[name]()
    assert count_params(reference) == params(arch)
    assert sum(count_macs(reference, 224).values()) == macs(arch)
    assert torch_flop_counter_macs(reference, arch) == macs(arch)


def test_released_cifar_shapes_match_their_estimate_plus_classifier_bias():
    # For the released shapes that keep every block, the official search estimate (`estimated_FLOP`) equals our
    # exact count minus the classifier biases, which the official estimate leaves out.
    for path in OFFICIAL_CONFIGS + COMPARE_CONFIGS:
        arch = read_tas_config(path)
        if arch.xblocks != arch.layers or arch.family != "cifar":
            continue
        text = path.read_text().split('"estimated_FLOP"')[1].split('"')[3]  # e.g. "22.444472" (MFLOPs)
        precision = 0.5 * 10 ** -len(text.split(".")[1]) * 1e6  # C100-ResNet32 stores only "42.47"
        assert abs(macs(arch) - arch.num_classes - float(text) * 1e6) <= max(precision, 0.5), path.stem


def test_dropped_blocks_feed_the_next_stage_with_the_last_kept_width():
    # C010-ResNet56 keeps 5 of 9 blocks per stage: stage 2's first block must read stage 1's 5th block output.
    arch = read_tas_config(OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C010-ResNet56")])
    specs = block_specs(arch)
    assert len(specs) == 15
    stage1_last = [s for s in specs if s.stage == 0][-1]
    stage2_first = [s for s in specs if s.stage == 1][0]
    assert stage2_first.in_width == stage1_last.out_width == arch.xchannels[2 + 4 * 2 + 1]


def test_conv_macs_is_differentiable_in_widths():
    c_in = torch.tensor(4.5, requires_grad=True)
    c_out = torch.tensor(8.0, requires_grad=True)
    total = conv_macs(3, c_in, c_out, 16)
    total.backward()
    assert total.item() == 9 * 16 * 16 * 4.5 * 8
    assert c_in.grad.item() == 9 * 16 * 16 * 8

"""Arch: validation, JSON round trip, the official .config format, and that every shape builds and runs."""

import json

import pytest
import torch

from tasbench.arch import Arch, block_specs
from tasbench.errors import ConfigError
from tasbench.official_config import format_tas_config, parse_tas_config, read_tas_config
from tasbench.presets import PRESETS, preset
from tasbench.resnet import build_resnet

from conftest import COMPARE_CONFIGS, OFFICIAL_CONFIGS

R20 = PRESETS["resnet20"]()


@pytest.mark.parametrize("path", OFFICIAL_CONFIGS + COMPARE_CONFIGS, ids=lambda p: p.stem)
def test_released_shape_builds_runs_and_trains(path):
    arch = read_tas_config(path)
    model = build_resnet(arch)
    size = 64 if arch.family == "imagenet" else 32  # the ImageNet nets are fully convolutional; 64 px is enough here
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, arch.num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("path", OFFICIAL_CONFIGS + COMPARE_CONFIGS, ids=lambda p: p.stem)
def test_official_format_round_trip(path):
    """Every released file imports, exports back as the same text (its super_type and estimate given), and an
    infer-width shape also exports as infer-shape with every block kept: both read back as the same Arch."""
    arch = read_tas_config(path)
    assert parse_tas_config(format_tas_config(arch)) == arch
    assert Arch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    original = path.read_text()
    raw = json.loads(original)
    estimate, super_type = float(raw["estimated_FLOP"][1]), raw["super_type"][1]
    assert ("xblocks" in raw) == (super_type == "infer-shape")
    if super_type == "infer-width":
        assert arch.xblocks == arch.layers
        assert parse_tas_config(format_tas_config(arch, super_type="infer-width")) == arch
    if path.stem != "C100-ResNet32":  # the one release file without a "search_mode" line
        assert format_tas_config(arch, estimate, super_type).rstrip() == original.rstrip()


def test_infer_width_needs_every_block():
    arch = read_tas_config(COMPARE_CONFIGS[[p.stem for p in COMPARE_CONFIGS].index("CIFAR100-TAS-R32")])
    assert arch.layers == arch.xblocks == (5, 5, 5)
    with pytest.raises(ConfigError, match=r"an infer-width config keeps every block; this shape keeps xblocks=\[5, 3"):
        format_tas_config(arch.replace(xblocks=(5, 3, 5)), super_type="infer-width")
    with pytest.raises(ConfigError, match="unknown super_type 'infer-depth'; allowed: infer-shape, infer-width"):
        format_tas_config(arch, super_type="infer-depth")


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_json_round_trip(name):
    arch = PRESETS[name]()
    assert Arch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch


def test_resnet20_block_layout():
    specs = block_specs(R20)
    assert [(s.stage, s.index, s.in_width, s.widths, s.strides, s.shortcut) for s in specs[2:5]] == [
        (0, 2, 16, (16, 16), (1, 1), "identity"),
        (1, 0, 16, (32, 32), (2, 1), "projection"),
        (1, 1, 32, (32, 32), (1, 1), "identity"),
    ]
    assert [s.shortcut for s in block_specs(R20.replace(shortcut="zero-pad"))][3] == "zero-pad"


def test_width_change_without_stride_gets_a_projection():
    x = list(R20.xchannels)
    x[3] = 12  # block 0 of stage 1 now outputs 12 channels from a 16-channel input
    arch = R20.replace(xchannels=tuple(x))
    spec = block_specs(arch)[0]
    assert (spec.in_width, spec.out_width, spec.stride, spec.shortcut) == (16, 12, 1, "projection")
    assert block_specs(arch)[1].shortcut == "projection"  # and the next block maps 12 back to 16
    assert build_resnet(arch)(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_zero_pad_shortcut_pads_the_subsampled_input():
    model = build_resnet(R20.replace(shortcut="zero-pad")).eval()
    shortcut = model.stages[1][0].shortcut
    x = torch.randn(1, 16, 32, 32)
    y = shortcut(x)
    assert y.shape == (1, 32, 16, 16)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()


BAD_ARCHS = [
    (dict(family="mnist"), "unknown family 'mnist'; allowed: cifar, imagenet"),
    (dict(block="wide"), "unknown block type 'wide'; allowed: basic, bottleneck"),
    (dict(shortcut="option-b"), "unknown shortcut 'option-b'; allowed: official, zero-pad"),
    (dict(layers=(3, 3)), "a cifar ResNet has 3 stages"),
    (dict(xblocks=(3, 4, 3)), "xblocks[1]=4 exceeds the 3 blocks of stage 1"),
    (dict(xblocks=(3, 0, 3)), "arch xblocks must hold positive ints, got 0"),
    (dict(xchannels=R20.xchannels[:-1]), "xchannels has 19 entries"),
    (dict(xchannels=R20.xchannels[:-1] + (2.5,)), "arch xchannels must hold positive ints, got 2.5"),
    (dict(num_classes=0), "num_classes must be a positive int, got 0"),
    (dict(layers="333"), "arch layers must be a list of ints"),
]


@pytest.mark.parametrize("change,message", BAD_ARCHS, ids=[m for _, m in BAD_ARCHS])
def test_bad_arch_is_named(change, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        R20.replace(**change)


def test_zero_pad_cannot_shrink_or_serve_imagenet():
    x = list(R20.xchannels)
    x[9] = x[11] = x[13] = 12  # stage 2 outputs 12 < 16 input channels
    with pytest.raises(ConfigError, match="cannot shrink channels: stage 1 block 0 maps 16 -> 12"):
        R20.replace(xchannels=tuple(x), shortcut="zero-pad")
    with pytest.raises(ConfigError, match="defined for CIFAR ResNets only"):
        PRESETS["resnet18"](shortcut="zero-pad")


def test_from_dict_rejects_unknown_and_missing_fields():
    d = R20.to_dict()
    with pytest.raises(ConfigError, match="unknown arch field 'width'"):
        Arch.from_dict({**d, "width": 2})
    del d["xblocks"]
    with pytest.raises(ConfigError, match="missing field 'xblocks'"):
        Arch.from_dict(d)


def test_preset_lookup_errors():
    with pytest.raises(ConfigError, match="unknown network 'resnet57'; allowed: resnet20, resnet32"):
        preset("resnet57", 10, "cifar")
    with pytest.raises(ConfigError, match="'resnet50' is an imagenet ResNet; for cifar data use one of: resnet20"):
        preset("resnet50", 10, "cifar")


def _config_text(**override) -> str:
    raw = json.loads(OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C010-ResNet20")].read_text())
    raw.update(override)
    return json.dumps({k: v for k, v in raw.items() if v is not None})


BAD_CONFIGS = [
    ('{"dataset": ["str", "cifar"', "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (_config_text(depth=None), "missing field 'depth'"),
    (_config_text(depth=["int", "21"]), "depth 21 does not fit ResNetBasicblock"),
    (_config_text(depth=["int", "twenty"]), "field 'depth' must be an integer, got 'twenty'"),
    (_config_text(module=["str", "ResNetWide"]), "unknown module 'ResNetWide'"),
    (_config_text(dataset=["str", "mnist"]), "unknown dataset 'mnist'; allowed: cifar, imagenet"),
    (_config_text(xblocks=["int", ["3", "3"]]), "a cifar ResNet has 3 stages"),
    (_config_text(xblocks=None), "missing field 'xblocks'"),
    (_config_text(super_type=["str", "infer-depth"]), "unknown super_type 'infer-depth'; allowed: infer-shape"),
    (_config_text(super_type=["str", "infer-width"]), "an infer-width config keeps every block and has no 'xblocks'"),
    (_config_text(xchannels=["int", ["3", "16"]]), "xchannels has 2 entries"),
    (_config_text(xchannels=["int", "16"]), "field 'xchannels' must be a non-empty list of integers"),
    (_config_text(class_num=7), "field 'class_num' must be a \\[type, value\\] pair"),
]


@pytest.mark.parametrize("text,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_malformed_tas_config_is_named(tmp_path, text, message):
    path = tmp_path / "bad.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"TAS config file '{path}': {message}"):
        read_tas_config(path)


def test_unreadable_tas_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_tas_config(tmp_path / "missing.config")
    (tmp_path / "latin1.config").write_bytes(b'{"dataset": ["str", "caf\xe9"]}')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        read_tas_config(tmp_path / "latin1.config")
    with pytest.raises(ConfigError, match="is a directory"):
        read_tas_config(tmp_path)

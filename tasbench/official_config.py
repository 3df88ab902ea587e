"""Read and write the official TAS `.config` format (the pruned shapes the paper authors released).

The format is JSON whose values are `[type, value]` pairs with the value as a string or list of strings
(`lib/config_utils/configure_utils.py` in the release)::

    "xchannels" : ["int", ["3", "16", "6", "4", ...]],
    "xblocks"   : ["int", ["3", "3", "3"]],

Two kinds: `super_type: infer-shape` (widths and `xblocks`, built by the release's `InferCifarResNet`) and
`infer-width` (widths only, every block kept: `InferWidthCifarResNet`, e.g. the pre-defined, random and TAS shapes
of the paper's CIFAR-100 ResNet-32 ablation in `official_configs/compares/`). Both import into an `Arch`;
`format_tas_config` writes either (infer-width only for a shape that keeps every block).

`read_tas_config("C010-ResNet20.config")` gives an `Arch` with layers=(3, 3, 3), xblocks=(3, 3, 3) and
22,444,482 MACs: its `estimated_FLOP` of 22.444472 M (the search model's estimate) plus the 10 classifier biases,
which the search's estimate leaves out.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.untrusted import TAS_CONFIG, read_text

_CIFAR_MODULES = {"ResNetBasicblock": "basic", "ResNetBottleneck": "bottleneck"}
_IMAGENET_BLOCKS = {"BasicBlock": "basic", "Bottleneck": "bottleneck"}
SUPER_TYPES = ("infer-shape", "infer-width")


def read_tas_config(path: str | Path) -> Arch:
    """Import an official `.config` file as an `Arch` (with the official shortcut)."""
    text = read_text(path, TAS_CONFIG)
    try:
        return parse_tas_config(text)
    except ConfigError as e:
        raise ConfigError(f"TAS config file {str(path)!r}: {e}") from None


def parse_tas_config(text: str) -> Arch:
    if not text.strip():
        raise ConfigError("the file is empty; expected a JSON object of '\"key\": [type, value]' pairs")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:  # the decoder recurses once per level: `[[[[...` a thousand deep ends Python's stack
        raise ConfigError("not a TAS config: JSON nested some 1000 levels deep (the format nests 3)") from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a JSON object of '\"key\": [type, value]' pairs")
    dataset = _field(raw, "dataset", str)
    if _field(raw, "arch", str) != "resnet":
        raise ConfigError(f"arch {raw['arch'][1]!r} is not supported; allowed: resnet")
    num_classes = _field(raw, "class_num", int)
    xchannels = _field(raw, "xchannels", list)
    super_type = _field(raw, "super_type", str) if "super_type" in raw else "infer-shape"
    if super_type not in SUPER_TYPES:
        raise ConfigError(f"unknown super_type {super_type!r}; allowed: {', '.join(SUPER_TYPES)}")
    if super_type == "infer-width" and "xblocks" in raw:
        raise ConfigError("an infer-width config keeps every block and has no 'xblocks'; use super_type infer-shape")
    xblocks = _field(raw, "xblocks", list) if super_type == "infer-shape" else None
    if dataset == "cifar":
        depth = _field(raw, "depth", int)
        module = _field(raw, "module", str)
        if module not in _CIFAR_MODULES:
            raise ConfigError(f"unknown module {module!r}; allowed: {', '.join(_CIFAR_MODULES)}")
        block = _CIFAR_MODULES[module]
        per_block = 9 if block == "bottleneck" else 6  # 3 stages x (3 or 2) convs per block
        per_stage, rest = divmod(depth - 2, per_block)
        if rest or per_stage < 1:
            raise ConfigError(f"depth {depth} does not fit {module} (depth must be {per_block}n + 2, n >= 1)")
        layers = [per_stage] * 3
    elif dataset == "imagenet":
        name = _field(raw, "block_name", str)
        if name not in _IMAGENET_BLOCKS:
            raise ConfigError(f"unknown block_name {name!r}; allowed: {', '.join(_IMAGENET_BLOCKS)}")
        if "deep_stem" in raw and _field(raw, "deep_stem", bool):
            raise ConfigError("deep_stem=1 is not supported; allowed: 0 (the torchvision stem)")
        block = _IMAGENET_BLOCKS[name]
        layers = _field(raw, "layers", list)
    else:
        raise ConfigError(f"unknown dataset {dataset!r}; allowed: cifar, imagenet")
    return Arch(
        dataset, block, tuple(layers), tuple(layers if xblocks is None else xblocks), tuple(xchannels), num_classes
    )


def format_tas_config(arch: Arch, estimated_flop: float | None = None, super_type: str = "infer-shape") -> str:
    """The official text for `arch`, laid out as the release's files of that `super_type`; `estimated_FLOP` defaults
    to the engine's exact count, in MFLOPs. An infer-width file (no `xblocks`) needs a shape that keeps every block.
    """
    if arch.shortcut != "official":
        raise ConfigError(f"the TAS .config format implies the official shortcut, not {arch.shortcut!r}")
    if super_type not in SUPER_TYPES:
        raise ConfigError(f"unknown super_type {super_type!r}; allowed: {', '.join(SUPER_TYPES)}")
    if super_type == "infer-width" and arch.xblocks != arch.layers:
        raise ConfigError(
            f"an infer-width config keeps every block; this shape keeps xblocks={list(arch.xblocks)} of "
            f"layers={list(arch.layers)} (use super_type infer-shape)"
        )
    mflop = macs(arch) / 1e6 if estimated_flop is None else estimated_flop
    xchannels = ("xchannels", "int", [str(c) for c in arch.xchannels])
    xblocks = [("search_mode", "str", "shape"), ("xblocks", "int", [str(b) for b in arch.xblocks])]
    if super_type == "infer-width":
        xblocks = []
    if arch.family == "cifar":
        depth = 2 + sum(arch.layers) * arch.convs_per_block
        module = {v: k for k, v in _CIFAR_MODULES.items()}[arch.block]
        fields = [
            ("dataset", "str", "cifar"),
            ("arch", "str", "resnet"),
            ("depth", "int", str(depth)),
            ("module", "str", module),
            ("super_type", "str", super_type),
            ("zero_init_residual", "bool", "0"),
            ("class_num", "int", str(arch.num_classes)),
            *xblocks[:1],
            xchannels,
            *xblocks[1:],
            ("estimated_FLOP", "float", repr(round(mflop, 6))),
        ]
    else:
        name = {v: k for k, v in _IMAGENET_BLOCKS.items()}[arch.block]
        fields = [
            ("dataset", "str", "imagenet"),
            ("arch", "str", "resnet"),
            ("block_name", "str", name),
            ("layers", "int", [str(n) for n in arch.layers]),
            ("deep_stem", "bool", "0"),
            ("zero_init_residual", "bool", "1"),
            ("class_num", "int", str(arch.num_classes)),
            *xblocks[:1],
            xchannels,
            *xblocks[1:],
            ("super_type", "str", super_type),
            ("estimated_FLOP", "float", repr(round(mflop, 6))),
        ]
    lines = [f"  {json.dumps(k):<20} : [{json.dumps(t):<7} , {json.dumps(v)}]" for k, t, v in fields]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _field(raw: dict, key: str, kind: type):
    """The value of `"key": [type, value]`, converted to `kind` (int, str, bool or a list of ints)."""
    if key not in raw:
        raise ConfigError(f"missing field {key!r}")
    pair = raw[key]
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
        raise ConfigError(f"field {key!r} must be a [type, value] pair, got {pair!r}")
    value = pair[1]
    try:
        if kind is list:
            if not isinstance(value, list) or not value:
                raise ValueError
            return [_to_int(v) for v in value]
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind is bool:
            return bool(_to_int(value))
        return _to_int(value)
    except ValueError:
        want = {list: "a non-empty list of integers", str: "a string", bool: "0 or 1", int: "an integer"}[kind]
        raise ConfigError(f"field {key!r} must be {want}, got {value!r}") from None


def _to_int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ValueError
    return int(v)

"""A teacher from a file instead of training: a tas-bench model file, or torchvision's ImageNet ResNet-18/50 weights.

torchvision's `state_dict` keys map one to one onto our builder (`tasbench.resnet`), and its nets are ours with
the shortcut "torchvision" (a strided 1x1 projection; the TAS release's "official" one average-pools first):

    conv1, bn1                       -> stem.conv, stem.bn
    layer{s}.{b}.conv{j}, .bn{j}      -> stages.{s-1}.{b}.convs.{j-1}, .bns.{j-1}
    layer{s}.{b}.downsample.0, .1     -> stages.{s-1}.{b}.shortcut.conv, .shortcut.bn
    fc                               -> fc

    >>> arch, model = load_teacher("~/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth")
    >>> arch == resnet50(shortcut="torchvision")
    True

Either file must hold exactly the net the sweep prunes (family, depth, widths, classes, shortcut); anything else is
a ConfigError naming the first difference. The file is read as every checkpoint is (weights only, bounded).
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from tasbench.arch import Arch
from tasbench.checkpoint import MODEL_FORMAT, load_checkpoint, load_model, load_state
from tasbench.errors import ConfigError
from tasbench.presets import imagenet_resnet
from tasbench.resnet import build_resnet

_TORCHVISION = [
    (re.compile(r"^conv1\."), "stem.conv."),
    (re.compile(r"^bn1\."), "stem.bn."),
    (re.compile(r"^layer(\d+)\.(\d+)\.conv(\d+)\."), lambda m: f"stages.{_less(m, 1)}.{m[2]}.convs.{_less(m, 3)}."),
    (re.compile(r"^layer(\d+)\.(\d+)\.bn(\d+)\."), lambda m: f"stages.{_less(m, 1)}.{m[2]}.bns.{_less(m, 3)}."),
    (re.compile(r"^layer(\d+)\.(\d+)\.downsample\.0\."), lambda m: f"stages.{_less(m, 1)}.{m[2]}.shortcut.conv."),
    (re.compile(r"^layer(\d+)\.(\d+)\.downsample\.1\."), lambda m: f"stages.{_less(m, 1)}.{m[2]}.shortcut.bn."),
]


def _less(match: re.Match, group: int) -> int:
    return int(match[group]) - 1


def from_torchvision(state: dict) -> dict:
    """torchvision ResNet `state_dict` keys renamed to ours; keys of neither kind are kept (load_state names them)."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in _TORCHVISION:
            if isinstance(key, str) and pattern.match(key):
                key = pattern.sub(replacement, key, count=1)
                break
        out[key] = value
    return out


def is_torchvision_state(state: dict) -> bool:
    return "conv1.weight" in state and "fc.weight" in state


def torchvision_arch(state: dict) -> Arch:
    """The unpruned ImageNet ResNet a torchvision `state_dict` is of: blocks per stage from its keys, bottleneck
    where blocks have a conv3, classes from fc (its widths are then checked by `load_state`)."""
    blocks: dict[int, set[int]] = {}
    for key in state:
        found = re.match(r"^layer(\d+)\.(\d+)\.", key) if isinstance(key, str) else None
        if found:
            blocks.setdefault(int(found[1]), set()).add(int(found[2]))
    layers = tuple(len(blocks.get(stage, ())) for stage in range(1, 5))
    if sorted(blocks) != [1, 2, 3, 4] or not all(layers):
        raise ConfigError(f"a torchvision ResNet has stages layer1..layer4, these weights have {sorted(blocks)}")
    block = "bottleneck" if "layer1.0.conv3.weight" in state else "basic"
    return imagenet_resnet(layers, block, int(state["fc.weight"].shape[0]), shortcut="torchvision")


def load_teacher(path: str | Path, arch: Arch | None = None) -> tuple[Arch, nn.Module]:
    """The net of `path` (a tas-bench model file or a torchvision ResNet state_dict) and its architecture, which
    must be `arch` where given."""
    source = f"weights file {str(path)!r}"
    ckpt = load_checkpoint(path)
    if ckpt.get("format") == MODEL_FORMAT:
        found, model = load_model(path)
    else:
        state = ckpt.get("state_dict", ckpt)
        if not isinstance(state, dict) or not is_torchvision_state(state):
            raise ConfigError(
                f"{source} is neither a tas-bench model file nor a torchvision ResNet state_dict "
                "(keys conv1.weight ... fc.weight)"
            )
        found = torchvision_arch(state)
        if arch is not None and (arch.family, arch.shortcut) != ("imagenet", "torchvision"):
            raise ConfigError(
                f"{source} holds torchvision ResNet weights: they need an ImageNet net with shortcut 'torchvision' "
                f"(its projection is a strided 1x1 conv), not {_shape(arch)}; set `shortcut: torchvision`"
            )
        model = build_resnet(found)
        load_state(model, from_torchvision(state), source)
    if arch is not None and found != arch:
        raise ConfigError(f"{source} holds {_shape(found)}; the runs need {_shape(arch)}")
    return found, model


def _shape(arch: Arch) -> str:
    return (
        f"a {arch.family} {arch.block} ResNet with blocks {list(arch.xblocks)} of {list(arch.layers)}, "
        f"{arch.num_classes} classes, shortcut {arch.shortcut!r}"
    )

"""The shapes the TAS authors released, as a pruner: the paper's own nets, retrained with the run's recipe.

No search: the released shape of the run's network and data set, built from a fresh seeded initialisation (the
release retrains its shapes from a random init with knowledge distillation, so a `kd` recipe is the paper's
procedure). It is the cheapest check of the paper's accuracy, and it separates "the shape is good" from "our search
finds that shape". The paper's CIFAR-10 ResNet-56 row is `compares/CIFAR010-TAS-R56.config` (59.45M MACs), not the
main release's `C010-ResNet56.config` (59.86M); every other network uses the main release's file.

    >>> arch = resnet56()
    >>> out = prune_released(PruneRequest(arch, build_resnet(arch), ratio=0.473), ReleasedOptions())
    >>> macs(out.arch), out.info["config"], round(out.info["flop_ratio"], 4)
    (59451400, 'compares/CIFAR010-TAS-R56.config', 0.4728)

`--opt config=NAME` takes another shipped shape for the same network (`CIFAR100-FIX-R32`, the paper's pre-defined
shape of its Table 1 ablation). The run's ratio must be the shape's own (to 0.001): a table row's target is then
what the net really has, and a spec cannot put a fixed shape in the wrong row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tasbench
from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flop_target import FlopTarget, absolute_band
from tasbench.flops import macs
from tasbench.official_config import read_tas_config
from tasbench.presets import PRESETS
from tasbench.pruner import Pruned, Pruner, PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed

CONFIG_DIR = Path(tasbench.__file__).parent / "official_configs"
# (network, classes) -> the released shape of the paper's table row, relative to CONFIG_DIR.
PAPER_SHAPES = {
    **{(f"resnet{d}", 10): f"C010-ResNet{d}.config" for d in (20, 32, 110, 164)},
    ("resnet56", 10): "compares/CIFAR010-TAS-R56.config",
    **{(f"resnet{d}", 100): f"C100-ResNet{d}.config" for d in (20, 32, 56, 110, 164)},
    ("resnet18", 1000): "ImageNet-ResNet18V1.config",
    ("resnet50", 1000): "ImageNet-ResNet50V1.config",
}
RATIO_TOLERANCE = 0.001  # the specs list each shape's ratio to 3 decimals


@dataclass(frozen=True)
class ReleasedOptions:
    config: str = ""  # "": the paper's shape for the run's network; else a shipped config's name, e.g. CIFAR100-FIX-R32

    def __post_init__(self) -> None:
        if self.config and self.config not in shipped_configs():
            raise ConfigError(f"unknown released config {self.config!r}; allowed: {', '.join(shipped_configs())}")


def shipped_configs() -> dict[str, str]:
    """Name (file stem) -> path relative to CONFIG_DIR, for every shipped `.config` file."""
    files = sorted(CONFIG_DIR.glob("*.config")) + sorted(CONFIG_DIR.glob("compares/*.config"))
    return {f.stem: str(f.relative_to(CONFIG_DIR)) for f in files}


def network_name(arch: Arch) -> str:
    """The preset `arch` is (at full width and depth), e.g. "resnet56"."""
    for name, make in PRESETS.items():
        base = make(num_classes=arch.num_classes)
        if base.family == arch.family and base.replace(shortcut=arch.shortcut) == arch:
            return name
    raise ConfigError(
        "released shapes replace an unpruned preset network; this one is not a preset "
        f"(layers={list(arch.layers)}, {arch.num_classes} classes)"
    )


def released_shape(arch: Arch, options: ReleasedOptions) -> tuple[Arch, str]:
    """The released shape that replaces the unpruned `arch`, and its file (relative to CONFIG_DIR)."""
    # An ImageNet shape may take torchvision's strided projection (a torchvision teacher's): same channels, same MACs.
    if arch.shortcut != "official" and not (arch.family == "imagenet" and arch.shortcut == "torchvision"):
        raise ConfigError(f"released shapes use the official shortcut, not {arch.shortcut!r}")
    name = network_name(arch)
    relative = shipped_configs()[options.config] if options.config else PAPER_SHAPES.get((name, arch.num_classes))
    if relative is None:
        have = ", ".join(f"{n} ({c} classes)" for n, c in PAPER_SHAPES)
        raise ConfigError(f"no released shape for {name} with {arch.num_classes} classes; released: {have}")
    shape = read_tas_config(CONFIG_DIR / relative)
    if (shape.family, shape.block, shape.layers, shape.num_classes) != (
        arch.family,
        arch.block,
        arch.layers,
        arch.num_classes,
    ):
        raise ConfigError(f"released config {relative!r} is not a shape of {name} with {arch.num_classes} classes")
    return shape.replace(shortcut=arch.shortcut), relative


def check_released(arch: Arch, options: ReleasedOptions, ratio: float) -> None:
    """The run's ratio is the released shape's own FLOP ratio (checked before anything trains)."""
    shape, relative = released_shape(arch, options)
    own = macs(shape) / macs(arch)
    if abs(ratio - own) > RATIO_TOLERANCE:
        raise ConfigError(
            f"ratio {ratio} is not that of the released shape {relative!r} ({own:.4f} of the FLOPs); "
            f"set the run's ratio to {own:.3f}"
        )


def released_band(options: ReleasedOptions, ratio: float) -> FlopTarget:
    """The run's ratio is the shape's own to RATIO_TOLERANCE (`check_released`), so the band is that close."""
    return absolute_band(ratio, RATIO_TOLERANCE)


def shape_note(arch: Arch, options: ReleasedOptions) -> str:
    """The dry run's words for the shape: its file, exact MACs and own FLOP ratio."""
    shape, relative = released_shape(arch, options)
    return f"{relative}: {macs(shape):,} MACs, {macs(shape) / macs(arch):.4f}"


def prune_released(request: PruneRequest, options: ReleasedOptions) -> Pruned:
    check_released(request.arch, options, request.ratio)
    shape, relative = released_shape(request.arch, options)
    model = seeded_resnet(shape, derive_seed(request.seed, "released-init"))
    info = {
        "config": relative,
        "flop_ratio": macs(shape) / macs(request.arch),
        "macs": macs(shape),
        "inherits_weights": False,
    }
    return Pruned(shape, model, info)


PRUNER = Pruner(
    name="released",
    prune=prune_released,
    options=ReleasedOptions,
    needs_data=False,
    summary="the TAS authors' released shape for the network (the paper's row), retrained: no search",
    band=released_band,
    check=check_released,
    shape_note=shape_note,
)

"""The shape of a (pruned) ResNet as a frozen dataclass of plain ints.

The layout follows the official TAS `.config` files (`xchannels`, `xblocks`): `xchannels` lists the output width of
every conv in network order, the input image's channels first, then the stem, then each block's convs, for *all*
`layers[s]` blocks of every stage; `xblocks[s]` says how many of them are kept. Dropped blocks are always the last
ones of a stage and their widths are ignored, as in the official `InferCifarResNet`.

Example, CIFAR ResNet-20 at full width (3 stages of 3 basic blocks, 2 convs each)::

    Arch(family="cifar", block="basic", layers=(3, 3, 3), xblocks=(3, 3, 3),
         xchannels=(3, 16, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32, 64, 64, 64, 64, 64, 64),
         num_classes=10)

has 1 + 1 + 9 * 2 = 20 `xchannels` entries and 40,813,194 MACs (see `flops.py`).

Shortcuts. `zero-pad` is He et al.'s option A (CIFAR only). `official` builds the networks of the TAS release: a
block whose shape changes gets a 1x1 projection, preceded by a 2x2 average pool when the block strides. Whether that
projection has a BatchNorm follows the release's three builders (`projection_has_bn`):

- CIFAR, unpruned (`CifarResNet`): no BN after a strided projection (its `Downsample` is pool + conv), a BN after a
  stride-1 one (only ResNet-164's first block, 16 -> 64 channels, has one);
- CIFAR, any other shape (`InferCifarResNet`, which builds every pruned or derived shape): no BN after a strided
  projection; after a stride-1 projection, a BN in a basic block and none in a bottleneck block;
- ImageNet: a BN after every projection, as the release's `InferImagenetResNet` and torchvision's conv + BN
  downsample (which strides its 1x1 conv instead of pooling first: the same parameters and MACs).

The two CIFAR builders differ only for a bottleneck's stride-1 projection, so `Arch` alone decides: a CIFAR `Arch`
with every block kept at its unpruned width (`is_unpruned`) is the release's `CifarResNet`, any other its
`InferCifarResNet` (or `InferWidthCifarResNet`, whose rules are the same). The one shape both could build, the
unpruned one, is taken as `CifarResNet`: the release would build a searched full-width ResNet-164 with one BN (128
parameters) less. ResNet-56 has 855,578 parameters, ResNet-164 1,703,386, as the release's nets; every inferred net of
`tests/data/tas_official_oracle.json` has the release's count too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tasbench.errors import ConfigError, choice_error

FAMILIES = ("cifar", "imagenet")
BLOCKS = ("basic", "bottleneck")
# "official": a strided projection average-pools 2x2, then runs a 1x1 conv (the TAS release); "torchvision": a 1x1
# conv of stride 2 (torchvision's ResNets, whose ImageNet weights load onto it: pretrained.py); same MACs.
SHORTCUTS = ("official", "zero-pad", "torchvision")

# Kernel size of each conv of a block, and which of them carries the stage's stride. The bottleneck puts the stride
# on its 3x3 conv, as torchvision's ResNet-50 (v1.5) and the official TAS code do.
BLOCK_KERNELS = {"basic": (3, 3), "bottleneck": (1, 3, 1)}
STRIDE_CONV = {"basic": 0, "bottleneck": 1}
NUM_STAGES = {"cifar": 3, "imagenet": 4}
# Stem conv (kernel, stride); the ImageNet stem is followed by a 3x3/2 max-pool.
STEM = {"cifar": (3, 1), "imagenet": (7, 2)}
IMAGE_SIZE = {"cifar": 32, "imagenet": 224}
IMAGE_CHANNELS = 3  # RGB: every data set here (CIFAR, ImageNet, the proxy) has 3-channel images
# Bounds far above any real ResNet, so that a model file or .config cannot ask for a net that exhausts memory before
# its first layer is built: ResNet-50's widest conv has 2,048 channels, ResNet-1202 200 blocks a stage, ImageNet-21k
# 21,841 classes.
MAX_WIDTH = 16384
MAX_BLOCKS = 1000
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Arch:
    """A ResNet shape: family, block type, blocks per stage, per-conv widths, classes, shortcut type."""

    family: str
    block: str
    layers: tuple[int, ...]
    xblocks: tuple[int, ...]
    xchannels: tuple[int, ...]
    num_classes: int
    shortcut: str = "official"

    def __post_init__(self) -> None:
        for name in ("layers", "xblocks", "xchannels"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"arch {name} must be a list of ints, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        _validate(self)

    @property
    def convs_per_block(self) -> int:
        return len(BLOCK_KERNELS[self.block])

    @property
    def image_size(self) -> int:
        return IMAGE_SIZE[self.family]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict; `Arch.from_dict(a.to_dict()) == a`."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Arch:
        if not isinstance(d, dict):
            raise ConfigError(f"arch must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown arch field {unknown[0]!r}; allowed: {', '.join(names)}")
        missing = [n for n in names if n not in d and n != "shortcut"]
        if missing:
            raise ConfigError(f"arch is missing field {missing[0]!r}")
        return cls(**d)

    def replace(self, **changes) -> Arch:
        return dataclasses.replace(self, **changes)


def unpruned_xchannels(family: str, block: str, layers: tuple[int, ...]) -> tuple[int, ...]:
    """`xchannels` of the unpruned ResNet: a 16-wide (CIFAR) or 64-wide (ImageNet) stem, stage s at 2^s times that,
    a bottleneck's last conv 4x wider. CIFAR basic, layers (3, 3, 3): (3, 16, 16, 16, ..., 64, 64)."""
    stem = 16 if family == "cifar" else 64
    widths = [3, stem]
    for stage, n in enumerate(layers):
        planes = stem * 2**stage
        widths += ([planes, planes, 4 * planes] if block == "bottleneck" else [planes, planes]) * n
    return tuple(widths)


def is_unpruned(arch: Arch) -> bool:
    """Every block kept at its unpruned width (a preset such as `resnet56()`, whatever its classes or shortcut)."""
    return arch.xblocks == arch.layers and arch.xchannels == unpruned_xchannels(arch.family, arch.block, arch.layers)


def projection_has_bn(arch: Arch, stride: int) -> bool:
    """Whether a projection shortcut of `arch` with this stride has a BatchNorm, as in the TAS release (see above)."""
    if arch.family == "imagenet":
        return True
    if stride == 2:
        return False
    return arch.block == "basic" or is_unpruned(arch)


@dataclass(frozen=True)
class BlockSpec:
    """One kept residual block: where its widths sit in `xchannels`, its input width, kernels and strides.

    For ResNet-20's first block of stage 2: stage=1, index=0, in_width=16, widths=(32, 32), kernels=(3, 3),
    strides=(2, 1), first_conv=8 (its convs are `xchannels[8:10]`), shortcut="projection", shortcut_bn=False.
    """

    stage: int
    index: int
    in_width: int
    widths: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    first_conv: int
    shortcut: str  # "identity" | "projection" | "zero-pad"
    shortcut_bn: bool = False  # a projection followed by a BatchNorm (`projection_has_bn`)
    pooled: bool = True  # a strided projection average-pools, then runs a stride-1 conv; False: a strided conv

    @property
    def out_width(self) -> int:
        return self.widths[-1]

    @property
    def stride(self) -> int:
        return max(self.strides)


def block_specs(arch: Arch) -> list[BlockSpec]:
    """The kept blocks of `arch` in forward order, each with its input width and shortcut type."""
    specs = []
    in_width = arch.xchannels[1]
    start = 2  # xchannels[0] is the image, xchannels[1] the stem
    kernels = BLOCK_KERNELS[arch.block]
    n = len(kernels)
    has_bn = {stride: projection_has_bn(arch, stride) for stride in (1, 2)}  # decided once per Arch
    for stage, (full, kept) in enumerate(zip(arch.layers, arch.xblocks)):
        for index in range(kept):
            first = start + index * n
            widths = arch.xchannels[first : first + n]
            stride = 2 if stage > 0 and index == 0 else 1
            strides = tuple(stride if i == STRIDE_CONV[arch.block] else 1 for i in range(n))
            if stride == 1 and in_width == widths[-1]:
                shortcut = "identity"
            else:
                shortcut = "zero-pad" if arch.shortcut == "zero-pad" else "projection"
            bn = shortcut == "projection" and has_bn[stride]
            pooled = arch.shortcut != "torchvision"
            specs.append(BlockSpec(stage, index, in_width, widths, kernels, strides, first, shortcut, bn, pooled))
            in_width = widths[-1]
        start += full * n
    return specs


def _validate(arch: Arch) -> None:
    if arch.family not in FAMILIES:
        raise choice_error("family", arch.family, FAMILIES)
    if arch.block not in BLOCKS:
        raise choice_error("block type", arch.block, BLOCKS)
    if arch.shortcut not in SHORTCUTS:
        raise choice_error("shortcut", arch.shortcut, SHORTCUTS)
    for name in ("layers", "xblocks", "xchannels"):
        bad = [v for v in getattr(arch, name) if not _is_positive_int(v)]
        if bad:
            raise ConfigError(f"arch {name} must hold positive ints, got {bad[0]!r}")
    if not _is_positive_int(arch.num_classes):
        raise ConfigError(f"num_classes must be a positive int, got {arch.num_classes!r}")
    _check_bounds(arch)
    stages = NUM_STAGES[arch.family]
    if len(arch.layers) != stages or len(arch.xblocks) != stages:
        raise ConfigError(
            f"a {arch.family} ResNet has {stages} stages, got layers={list(arch.layers)} xblocks={list(arch.xblocks)}"
        )
    for stage, (full, kept) in enumerate(zip(arch.layers, arch.xblocks)):
        if kept > full:
            raise ConfigError(f"xblocks[{stage}]={kept} exceeds the {full} blocks of stage {stage}")
    expected = 2 + sum(arch.layers) * arch.convs_per_block
    if len(arch.xchannels) != expected:
        raise ConfigError(
            f"xchannels has {len(arch.xchannels)} entries; layers={list(arch.layers)} with {arch.block} blocks "
            f"needs {expected} (input, stem, then {arch.convs_per_block} per block)"
        )
    if arch.shortcut == "zero-pad":
        if arch.family != "cifar":
            raise ConfigError(f"shortcut 'zero-pad' is defined for CIFAR ResNets only, not {arch.family!r}")
        for spec in block_specs(arch):
            if spec.shortcut == "zero-pad" and spec.out_width < spec.in_width:
                raise ConfigError(
                    f"shortcut 'zero-pad' cannot shrink channels: stage {spec.stage} block {spec.index} maps "
                    f"{spec.in_width} -> {spec.out_width}; use shortcut 'official'"
                )
    if arch.shortcut == "torchvision" and arch.family != "imagenet":
        raise ConfigError(f"shortcut 'torchvision' is defined for ImageNet ResNets only, not {arch.family!r}")


def _check_bounds(arch: Arch) -> None:
    if arch.xchannels[0] != IMAGE_CHANNELS:
        raise ConfigError(
            f"xchannels[0] is the input image's channels and must be {IMAGE_CHANNELS} (RGB), got {arch.xchannels[0]}"
        )
    widest = max(arch.xchannels[1:], default=0)
    if widest > MAX_WIDTH:
        where = arch.xchannels.index(widest)
        raise ConfigError(f"xchannels[{where}]={widest}; tas-bench builds convs of at most {MAX_WIDTH} channels")
    for name in ("layers", "xblocks"):
        deepest = max(getattr(arch, name))
        if deepest > MAX_BLOCKS:
            raise ConfigError(
                f"arch {name} asks for {deepest} blocks in a stage; tas-bench builds at most {MAX_BLOCKS}"
            )
    if arch.num_classes > MAX_CLASSES:
        raise ConfigError(
            f"num_classes {arch.num_classes}; tas-bench builds classifiers of at most {MAX_CLASSES} classes"
        )


def _is_positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0

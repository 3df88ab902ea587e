"""Named full-width ResNets: each a short function returning an `Arch`, listed in `PRESETS`.

>>> resnet56().xchannels[:4], len(resnet56().xchannels)
((3, 16, 16, 16), 56)
>>> resnet50().layers
(3, 4, 6, 3)
"""

from __future__ import annotations

from collections.abc import Callable

from tasbench.arch import Arch, unpruned_xchannels
from tasbench.errors import ConfigError, choice_error


def cifar_resnet(depth: int, num_classes: int = 10, shortcut: str = "official") -> Arch:
    """The CIFAR ResNet of He et al. (2016): a 16-wide 3x3 stem, 3 stages of width 16/32/64 (x4 for bottleneck).

    Basic blocks for depth = 6n + 2 (20, 32, 56, 110), bottleneck blocks for depth = 9n + 2 (164).
    """
    block = "bottleneck" if depth == 164 else "basic"
    per_block = 3 if block == "bottleneck" else 2
    if (depth - 2) % (3 * per_block):
        raise ConfigError(f"CIFAR ResNet depth {depth} is not 6n+2 (basic) or 164 (bottleneck)")
    n = (depth - 2) // (3 * per_block)
    layers = (n, n, n)
    return Arch("cifar", block, layers, layers, unpruned_xchannels("cifar", block, layers), num_classes, shortcut)


def imagenet_resnet(layers: tuple[int, ...], block: str, num_classes: int = 1000, shortcut: str = "official") -> Arch:
    """The ImageNet ResNet of torchvision: a 64-wide 7x7/2 stem + max-pool, 4 stages of width 64/128/256/512."""
    layers = tuple(layers)
    return Arch("imagenet", block, layers, layers, unpruned_xchannels("imagenet", block, layers), num_classes, shortcut)


def full_width(arch: Arch) -> Arch:
    """The unpruned net `arch` was cut from: every block kept, every conv at full width (same classes, shortcut).

    The official C010-ResNet56.config (59,858,440 MACs) gives resnet56() itself (125,747,850 MACs): 47.6% of it.
    """
    return arch.replace(xblocks=arch.layers, xchannels=unpruned_xchannels(arch.family, arch.block, arch.layers))


def resnet20(num_classes: int = 10, shortcut: str = "official") -> Arch:
    return cifar_resnet(20, num_classes, shortcut)


def resnet32(num_classes: int = 10, shortcut: str = "official") -> Arch:
    return cifar_resnet(32, num_classes, shortcut)


def resnet56(num_classes: int = 10, shortcut: str = "official") -> Arch:
    return cifar_resnet(56, num_classes, shortcut)


def resnet110(num_classes: int = 10, shortcut: str = "official") -> Arch:
    return cifar_resnet(110, num_classes, shortcut)


def resnet164(num_classes: int = 10, shortcut: str = "official") -> Arch:
    return cifar_resnet(164, num_classes, shortcut)


def resnet18(num_classes: int = 1000, shortcut: str = "official") -> Arch:
    return imagenet_resnet((2, 2, 2, 2), "basic", num_classes, shortcut)


def resnet50(num_classes: int = 1000, shortcut: str = "official") -> Arch:
    return imagenet_resnet((3, 4, 6, 3), "bottleneck", num_classes, shortcut)


PRESETS: dict[str, Callable[..., Arch]] = {
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "resnet164": resnet164,
    "resnet18": resnet18,
    "resnet50": resnet50,
}


def preset_of(arch: Arch) -> str | None:
    """The preset of `arch`'s family, block type and blocks per stage ("resnet56" for any pruned ResNet-56), or None."""
    for name, make in PRESETS.items():
        base = make()
        if (base.family, base.block, base.layers) == (arch.family, arch.block, arch.layers):
            return name
    return None


def preset(name: str, num_classes: int, family: str, shortcut: str = "official") -> Arch:
    """The preset `name` for a data set of `family` ("cifar" for 32x32 data, "imagenet"), with a clear error."""
    if name not in PRESETS:
        raise choice_error("network", name, list(PRESETS))
    arch = PRESETS[name](num_classes=num_classes, shortcut=shortcut)
    if arch.family != family:
        allowed = [n for n, f in PRESETS.items() if f().family == family]
        raise ConfigError(
            f"network {name!r} is an {arch.family} ResNet; for {family} data use one of: {', '.join(allowed)}"
        )
    return arch


def natural_dataset(arch: Arch) -> str:
    """The data set a network is meant for when none is named: its own classes and image size."""
    if arch.family == "imagenet":
        return "imagenet"
    return "cifar100" if arch.num_classes == 100 else "cifar10"


def check_fits(arch: Arch, dataset: str, source: str) -> None:
    """`dataset` is known and has the classes and image size of `arch` (named by `source` in the error)."""
    from tasbench.data import DATASETS  # imports torch: only when a command resolves a network

    if dataset not in DATASETS:
        raise choice_error("dataset", dataset, list(DATASETS))
    facts = DATASETS[dataset]
    if (arch.num_classes, arch.family) != (facts.num_classes, facts.family):
        raise ConfigError(
            f"{source} is a {arch.num_classes}-class {arch.family} network, not one for dataset "
            f"{dataset!r} ({facts.num_classes} classes of {facts.family} images)"
        )


def resolve_network(
    network: str | None, tas_config: str | None, shortcut: str = "official", dataset: str | None = None
) -> tuple[Arch, str]:
    """The network a command names, by preset name or official TAS `.config` file (one of the two), for `dataset`
    or else the network's own data set; returns it and the data set."""
    from tasbench.data import DATASETS
    from tasbench.official_config import read_tas_config

    if tas_config and network:
        raise ConfigError("give --network or --tas-config, not both")
    if tas_config:
        if shortcut != "official":
            raise ConfigError(f"a TAS .config implies the official shortcut, not {shortcut!r}")
        arch = read_tas_config(tas_config)
        dataset = dataset or natural_dataset(arch)
        check_fits(arch, dataset, f"TAS config {tas_config!r}")
        return arch, dataset
    if not network:
        raise ConfigError("give --network NAME or --tas-config FILE")
    # An unknown name falls through to preset(), which names it and lists the allowed ones.
    dataset = dataset or (natural_dataset(PRESETS[network]()) if network in PRESETS else "cifar10")
    if dataset not in DATASETS:
        raise choice_error("dataset", dataset, list(DATASETS))
    return preset(network, DATASETS[dataset].num_classes, DATASETS[dataset].family, shortcut), dataset

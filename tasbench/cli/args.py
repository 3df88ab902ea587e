"""Options and network resolution shared by `flops`, `train` and `prune`: which net, which data, which device."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tasbench import overrides
from tasbench.arch import SHORTCUTS, Arch
from tasbench.bounds import path_flag
from tasbench.device import DEVICE_HELP
from tasbench.errors import ConfigError, choice_error
from tasbench.presets import PRESETS, preset

if TYPE_CHECKING:
    from torch import nn


def add_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--tas-config", type=path_flag,
                   help="an official TAS .config file (e.g. tasbench/official_configs/*.config)")
    p.add_argument("--shortcut", default="official", help=f"one of: {', '.join(SHORTCUTS)} (default: official)")



def add_data_args(p: argparse.ArgumentParser) -> None:
    from tasbench.data import DataConfig

    overrides.add_arguments(p, DataConfig)
    p.add_argument("--data-dir", type=path_flag,
                   help="directory holding CIFAR (python version) or ImageNet (train/ and val/)")
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if it is missing")



def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")



def natural_dataset(arch: Arch) -> str:
    """The data set a network is meant for when --dataset is not given: its own classes and image size."""
    if arch.family == "imagenet":
        return "imagenet"
    return "cifar100" if arch.num_classes == 100 else "cifar10"



def check_fits(arch: Arch, dataset: str, source: str) -> None:
    """`dataset` is known and has the classes and image size of `arch` (named by `source` in the error)."""
    from tasbench.data import DATASETS

    if dataset not in DATASETS:
        raise choice_error("dataset", dataset, list(DATASETS))
    num_classes, family = DATASETS[dataset].num_classes, DATASETS[dataset].family
    if (arch.num_classes, arch.family) != (num_classes, family):
        raise ConfigError(f"{source} is a {arch.num_classes}-class {arch.family} network, not one for dataset "
                          f"{dataset!r} ({num_classes} classes of {family} images)")  # fmt: skip



def named_arch(args: argparse.Namespace, dataset: str | None) -> tuple[Arch, str]:
    """The network --network/--tas-config names (with --shortcut), for `dataset` or else the network's own."""
    from tasbench.data import DATASETS
    from tasbench.official_config import read_tas_config

    if args.tas_config and args.network:
        raise ConfigError("give --network or --tas-config, not both")
    if args.tas_config:
        if args.shortcut != "official":
            raise ConfigError(f"a TAS .config implies the official shortcut, not {args.shortcut!r}")
        arch = read_tas_config(args.tas_config)
        dataset = dataset or natural_dataset(arch)
        check_fits(arch, dataset, f"TAS config {args.tas_config!r}")
        return arch, dataset
    if not args.network:
        raise ConfigError("give --network NAME or --tas-config FILE")
    # An unknown name falls through to preset(), which names it and lists the allowed ones.
    dataset = dataset or (natural_dataset(PRESETS[args.network]()) if args.network in PRESETS else "cifar10")
    if dataset not in DATASETS:
        raise choice_error("dataset", dataset, list(DATASETS))
    num_classes, family = DATASETS[dataset].num_classes, DATASETS[dataset].family
    return preset(args.network, num_classes, family, args.shortcut), dataset



def unpruned_net(args: argparse.Namespace, dataset: str | None, seed: int) -> tuple[Arch, nn.Module, str]:
    """The net given by --weights (a model file), or one built from --network/--tas-config with a seeded init,
    and the data set it is for (`dataset`, or the net's own)."""
    from tasbench.checkpoint import load_model
    from tasbench.resnet import seeded_resnet

    if args.weights:
        if args.network or args.tas_config:
            raise ConfigError("--weights already defines the network; drop --network/--tas-config")
        arch, model = load_model(args.weights)
        dataset = dataset or natural_dataset(arch)
        check_fits(arch, dataset, f"model file {args.weights!r}")
        return arch, model, dataset
    arch, dataset = named_arch(args, dataset)
    return arch, seeded_resnet(arch, seed), dataset

"""Options and network resolution shared by `flops`, `train` and `prune`: which net, which data, which device."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tasbench import overrides
from tasbench.arch import SHORTCUTS, Arch
from tasbench.bounds import path_flag
from tasbench.device import DEVICE_HELP, device_flag
from tasbench.errors import ConfigError
from tasbench.presets import PRESETS, check_fits, natural_dataset, resolve_network

if TYPE_CHECKING:
    from torch import nn


def add_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", help=f"one of: {', '.join(PRESETS)}")
    p.add_argument(
        "--tas-config", type=path_flag, help="an official TAS .config file (e.g. tasbench/official_configs/*.config)"
    )
    p.add_argument("--shortcut", default="official", help=f"one of: {', '.join(SHORTCUTS)} (default: official)")


def add_data_args(p: argparse.ArgumentParser) -> None:
    from tasbench.data import DataConfig

    overrides.add_arguments(p, DataConfig)
    p.add_argument(
        "--data-dir", type=path_flag, help="directory holding CIFAR (python version) or ImageNet (train/ and val/)"
    )
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if it is missing")


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_flag, default="auto", help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_compile_arg(p)


def add_compile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compile",
        action="store_true",
        help="train through torch.compile on CUDA (eager after a compile error; CPU stays eager; default: off)",
    )


def named_arch(args: argparse.Namespace, dataset: str | None) -> tuple[Arch, str]:
    """The network --network/--tas-config names (with --shortcut), for `dataset` or else the network's own."""
    return resolve_network(args.network, args.tas_config, args.shortcut, dataset)


def unpruned_net(args: argparse.Namespace, dataset: str | None, seed: int) -> tuple[Arch, nn.Module, str]:
    """The net given by --weights (a model file), or one built from --network/--tas-config with a seeded init,
    and the data set it is for (`dataset`, or the net's own)."""
    from tasbench.pretrained import load_teacher
    from tasbench.resnet import seeded_resnet

    if args.weights:
        if args.network or args.tas_config:
            raise ConfigError("--weights already defines the network; drop --network/--tas-config")
        arch, model = load_teacher(args.weights)  # a tas-bench model file, or torchvision ResNet weights
        dataset = dataset or natural_dataset(arch)
        check_fits(arch, dataset, f"model file {args.weights!r}")
        return arch, model, dataset
    arch, dataset = named_arch(args, dataset)
    return arch, seeded_resnet(arch, seed), dataset

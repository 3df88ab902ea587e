"""`tas-bench flops`: MACs and parameters of a network, as the TAS paper counts them.

tas-bench flops --network resnet56 --dataset cifar10 [--shortcut official|zero-pad] [--json]
tas-bench flops --tas-config tasbench/official_configs/C010-ResNet56.config   # its ratio to the full ResNet-56
"""

from __future__ import annotations

import argparse

from tasbench.cli.args import add_network_args, named_arch
from tasbench.presets import full_width, preset_of


def register(commands: argparse._SubParsersAction) -> None:
    # its options are added only when `flops` is chosen: they come from modules that import torch
    commands.add_parser("flops", _flops_options, help="MACs and parameters of a network, as the TAS paper counts them")


def _flops_options(p: argparse.ArgumentParser) -> None:
    from tasbench.data import DATASETS

    add_network_args(p)
    p.add_argument(
        "--dataset", help=f"sets the number of classes: {', '.join(DATASETS)} (default: cifar10 or imagenet)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (the whole arch included)")
    p.set_defaults(command=cmd_flops)


def cmd_flops(args: argparse.Namespace) -> dict | str:
    from tasbench.flops import macs, params

    arch, dataset = named_arch(args, args.dataset)
    full = full_width(arch)  # the net itself, unless --tas-config gave a pruned shape
    counted = {
        "network": args.network or args.tas_config,
        "dataset": dataset,
        "shortcut": arch.shortcut,
        "macs": macs(arch),
        "params": params(arch),
        "macs_unpruned": macs(full),
        "params_unpruned": params(full),
        "flop_ratio": macs(arch) / macs(full),
        "arch": arch.to_dict(),
    }
    return counted if args.json else flops_summary(counted, None if arch == full else preset_of(arch) or "net")


def flops_summary(counted: dict, pruned_from: str | None) -> str:
    """`tas-bench flops` for people; for a pruned shape (`pruned_from`: the full net's name) each count's share::

    C010-ResNet56.config: cifar10, official shortcut
      MACs       59,858,440  (59.86 M)  47.6% of the unpruned resnet56 (125,747,850)
      params        ...
    """
    lines = [f"{counted['network']}: {counted['dataset']}, {counted['shortcut']} shortcut"]
    for key, label in (("macs", "MACs"), ("params", "params")):
        value, full = counted[key], counted[f"{key}_unpruned"]
        line = f"  {label:<7}{value:>15,}  ({value / 1e6:.2f} M)"
        if pruned_from is not None:
            line += f"  {value / full:.1%} of the unpruned {pruned_from} ({full:,})"
        lines.append(line)
    return "\n".join(lines)

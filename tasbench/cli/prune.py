"""`tas-bench prune`: prune a network to a FLOP ratio with a registered method; prints its shape and FLOPs.

    tas-bench prune --method uniform --network resnet56 --dataset cifar10 --ratio 0.5
    tas-bench prune --method l1 --weights model.pt --ratio 0.5          # L1 and FPGM score a trained net's filters
    tas-bench prune --method l1 --network resnet56 --shortcut zero-pad --opt variant=B   # Li et al.'s fixed shape

Options that fix the shape by themselves (L1's paper variants, `--opt variant=A|B`) take no --ratio; every other
run needs one.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tasbench import overrides
from tasbench.bounds import MAX_SEED, int_flag, path_flag
from tasbench.cli.args import add_data_args, add_device_args, add_network_args, unpruned_net
from tasbench.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    # its options are added only when `prune` is chosen: they come from modules that import torch
    commands.add_parser("prune", _prune_options, help="prune a network to a FLOP ratio; prints its shape and FLOPs")


def _prune_options(p: argparse.ArgumentParser) -> None:
    from tasbench.pruner import pruner_names

    p.add_argument("--method", required=True, help=f"one of: {', '.join(pruner_names())}")
    p.add_argument(
        "--ratio",
        type=float,
        help="target FLOPs as a fraction of the unpruned, in (0, 1]; none when "
        "the options fix the shape (l1: --opt variant=A|B, resnet56/110)",
    )
    add_network_args(p)
    p.add_argument(
        "--weights",
        "--teacher-weights",
        dest="weights",
        type=path_flag,
        help="the trained unpruned net (a sweep's teacher): a tas-bench model file or torchvision ResNet-18/50 "
        "weights, for methods that score its weights (l1, fpgm; default: a fresh seeded initialisation)",
    )
    p.add_argument("--seed", type=int_flag(0, MAX_SEED), default=0)
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--save", type=path_flag, help="write the pruned net (architecture + weights) to this model file")
    p.add_argument(
        "--save-tas-config", type=path_flag, help="write the pruned shape in the official TAS .config format"
    )
    p.add_argument(
        "--workdir", type=path_flag, help="where a long pruner (a TAS search) keeps its resumable checkpoint"
    )
    add_data_args(p)
    add_device_args(p)
    p.set_defaults(
        command=cmd_prune,
        resumes="run the same command again (a TAS search given --workdir resumes from its last finished epoch)",
    )


def cmd_prune(args: argparse.Namespace) -> dict:
    from tasbench.atomic import check_output_dir, write_text
    from tasbench.checkpoint import save_model
    from tasbench.data import DataConfig, load_data
    from tasbench.flops import macs, params
    from tasbench.official_config import format_tas_config
    from tasbench.pruner import PruneRequest, fixed_shape, get_pruner, needs_data
    from tasbench.seeds import derive_seed

    device = args.device
    pruner = get_pruner(args.method)
    if args.workdir:
        check_output_dir(args.workdir, "--workdir")
    for flag, file in (("--save", args.save), ("--save-tas-config", args.save_tas_config)):
        if file:
            check_output_dir(Path(file).parent, flag, given=file)
    if args.weights and not pruner.reads_weights:
        raise ConfigError(
            f"--method {args.method} does not read --weights: it takes the unpruned net's shape only, "
            "and its pruned net starts from a fresh initialisation; give the shape with --network or "
            "--tas-config, and use the trained net as the retraining's teacher (tas-bench train "
            "--teacher)"
        )
    options = overrides.parse_overrides(pruner.options, args.opt)
    fixed = fixed_shape(pruner, options)
    if fixed and args.ratio is not None:
        raise ConfigError(
            f"give --ratio (a FLOP target) or options that fix the shape, not both: --method "
            f"{args.method} with {' '.join(f'--opt {o}' for o in args.opt)} fixes it"
        )
    if not fixed and args.ratio is None:
        raise ConfigError(
            f"give --ratio R (a FLOP target in (0, 1]): --method {args.method} with these options "
            "does not fix the shape"
        )
    arch, model, dataset = unpruned_net(args, args.dataset, derive_seed(args.seed, "unpruned-init"))
    data_cfg = overrides.from_namespace(DataConfig, args, dataset=dataset)
    data = load_data(data_cfg, args.data_dir, args.download) if needs_data(pruner, options) else None
    request = PruneRequest(
        arch, model.to(device), args.ratio, data, args.seed, device, workdir=args.workdir, progress=not args.no_progress
    )
    pruned = pruner.prune(request, options)
    if pruner.reads_weights and not args.weights:  # said once it worked: bad input stays one line
        net = args.network or args.tas_config
        print(
            f"tas-bench: warning: --method {args.method} pruned a freshly initialised {net} (--seed {args.seed}), "
            "not a trained net; give --weights MODEL.pt to prune a trained one",
            file=sys.stderr,
        )
    if args.save:
        save_model(args.save, pruned.arch, pruned.model, method=args.method, ratio=args.ratio, info=pruned.info)
    if args.save_tas_config:
        write_text(args.save_tas_config, format_tas_config(pruned.arch))
    return {
        "method": args.method,
        "options": dataclasses.asdict(options),
        "ratio": args.ratio,
        "macs": macs(pruned.arch),
        "params": params(pruned.arch),
        "macs_unpruned": macs(arch),
        "params_unpruned": params(arch),
        "flop_ratio": macs(pruned.arch) / macs(arch),
        "arch": pruned.arch.to_dict(),
        "info": pruned.info,
        "saved": [path for path in (args.save, args.save_tas_config) if path],
    }

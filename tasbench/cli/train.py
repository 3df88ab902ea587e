"""`tas-bench train`: train a network (plain or with knowledge distillation) into a run directory.

tas-bench train [--network resnet20 --dataset proxy --epochs 10]       # -> runs/train/<hash>/
"""

from __future__ import annotations

import argparse
import sys

from tasbench import overrides
from tasbench.bounds import path_flag
from tasbench.cli.args import add_data_args, add_device_args, add_network_args, unpruned_net
from tasbench.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    # its options are added only when `train` is chosen: they come from modules that import torch
    commands.add_parser(
        "train", _train_options, help="train a network (plain or with knowledge distillation) into runs/"
    )


def _train_options(p: argparse.ArgumentParser) -> None:
    from tasbench.distill import DistillConfig
    from tasbench.train import TrainConfig

    add_network_args(p)
    p.add_argument(
        "--weights", type=path_flag, help="start from this model file (its architecture and weights), e.g. a pruned net"
    )
    add_data_args(p)
    overrides.add_arguments(p, TrainConfig)
    p.add_argument(
        "--teacher",
        "--teacher-weights",
        dest="teacher",
        type=path_flag,
        help="distil from this net: a tas-bench model file, or torchvision ResNet-18/50 weights (a state_dict)",
    )
    p.add_argument("--kd-alpha", type=float, default=DistillConfig.alpha, help="weight of the KD term")
    p.add_argument("--kd-temperature", type=float, default=DistillConfig.temperature, help="KD temperature")
    p.add_argument("--out", type=path_flag, default="runs", help="results root (default: runs)")
    add_device_args(p)
    p.set_defaults(
        command=cmd_train,
        resumes="the run keeps its last finished epoch (checkpoint.pt); run the same command to resume it",
    )


def cmd_train(args: argparse.Namespace) -> dict:
    from tasbench.atomic import check_output_dir
    from tasbench.data import DataConfig, load_data
    from tasbench.distill import DistillConfig
    from tasbench.pretrained import load_teacher
    from tasbench.runner.store import file_digest
    from tasbench.runner.teacher import TrainingRun, train_once
    from tasbench.seeds import derive_seed
    from tasbench.train import TrainConfig

    device = args.device
    if not (args.network or args.tas_config or args.weights):
        args.network = "resnet20"
    check_output_dir(args.out, "--out")
    data_cfg = overrides.from_namespace(DataConfig, args)
    train_cfg = overrides.from_namespace(TrainConfig, args)
    distill = DistillConfig(args.kd_alpha, args.kd_temperature) if args.teacher else None
    arch, model, _ = unpruned_net(args, data_cfg.dataset, derive_seed(train_cfg.seed, "init"))
    teacher = None
    if args.teacher:  # loaded before it is hashed: a missing or foreign file is named here
        teacher_arch, teacher = load_teacher(args.teacher)
        if teacher_arch.num_classes != arch.num_classes:
            raise ConfigError(
                f"teacher {args.teacher!r} has {teacher_arch.num_classes} classes, the student {arch.num_classes}"
            )
    # The run directory a sweep's teacher of the same net, data and recipe trains in too (runner/teacher.py).
    run = TrainingRun(
        arch,
        data_cfg,
        train_cfg,
        init_weights=file_digest(args.weights) if args.weights else None,
        teacher=file_digest(args.teacher) if args.teacher else None,
        distill=distill,
    )
    metrics, trained = train_once(
        run,
        args.out,
        load=lambda: load_data(data_cfg, args.data_dir, args.download),
        device=device,
        model=model,
        teacher=teacher,
        progress=not args.no_progress,
    )
    if not trained:
        print(f"already done: {run.directory(args.out)}", file=sys.stderr)
    return metrics  # printed as metrics.json holds it: strict JSON, null for a diverged loss

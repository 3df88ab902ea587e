"""`tas-bench train`: train a network (plain or with knowledge distillation) into a run directory.

    tas-bench train [--network resnet20 --dataset proxy --epochs 10]       # -> runs/train/<hash>/
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from tasbench import overrides
from tasbench.bounds import path_flag
from tasbench.cli.args import add_data_args, add_device_args, add_network_args, unpruned_net
from tasbench.device import parse_device
from tasbench.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    # its options are added only when `train` is chosen: they come from modules that import torch
    commands.add_parser("train", _train_options,
                        help="train a network (plain or with knowledge distillation) into runs/")  # fmt: skip


def _train_options(p: argparse.ArgumentParser) -> None:
    from tasbench.distill import DistillConfig
    from tasbench.train import TrainConfig

    add_network_args(p)
    p.add_argument("--weights", type=path_flag,
                   help="start from this model file (its architecture and weights), e.g. a pruned net")
    add_data_args(p)
    overrides.add_arguments(p, TrainConfig)
    p.add_argument("--teacher", type=path_flag, help="distil from this model file (the unpruned net)")
    p.add_argument("--kd-alpha", type=float, default=DistillConfig.alpha, help="weight of the KD term")
    p.add_argument("--kd-temperature", type=float, default=DistillConfig.temperature, help="KD temperature")
    p.add_argument("--out", type=path_flag, default="runs", help="results root (default: runs)")
    add_device_args(p)
    p.set_defaults(command=cmd_train, resumes="the run keeps its last finished epoch (checkpoint.pt); run the same "
                                              "command to resume it")  # fmt: skip



def cmd_train(args: argparse.Namespace) -> dict:
    import torch

    from tasbench.atomic import check_output_dir, finite, remove_stale_temporaries, write_json
    from tasbench.checkpoint import load_model, save_model
    from tasbench.data import DataConfig, load_data
    from tasbench.distill import DistillConfig, DistillLoss
    from tasbench.flops import macs, params
    from tasbench.runner.code_identity import code_identity, code_packages
    from tasbench.runner.experiment import start_teacher
    from tasbench.runner.locks import directory_lock
    from tasbench.runner.run_files import TEACHER_METRICS, divergence, finished
    from tasbench.runner.store import environment, file_digest, run_dir, torch_threads, write_log_csv
    from tasbench.runner.supersede import finish_superseding
    from tasbench.seeds import derive_seed
    from tasbench.train import TrainConfig, cross_entropy, train

    device = parse_device(args.device)
    if not (args.network or args.tas_config or args.weights):
        args.network = "resnet20"
    check_output_dir(args.out, "--out")
    data_cfg = overrides.from_namespace(DataConfig, args)
    train_cfg = overrides.from_namespace(TrainConfig, args)
    distill = DistillConfig(args.kd_alpha, args.kd_temperature) if args.teacher else None
    arch, model, _ = unpruned_net(args, data_cfg.dataset, derive_seed(train_cfg.seed, "init"))
    teacher = None
    if args.teacher:  # loaded before it is hashed: a missing or foreign file is named here
        teacher_arch, teacher = load_model(args.teacher)
        if teacher_arch.num_classes != arch.num_classes:
            raise ConfigError(f"teacher {args.teacher!r} has {teacher_arch.num_classes} classes, the student "
                              f"{arch.num_classes}")  # fmt: skip
    config = {
        "arch": arch.to_dict(),
        "data": dataclasses.asdict(data_cfg),
        "train": dataclasses.asdict(train_cfg),
        "init_weights": file_digest(args.weights) if args.weights else None,
        "teacher": file_digest(args.teacher) if args.teacher else None,
        "distill": dataclasses.asdict(distill) if distill else None,
    }
    out = run_dir(args.out, "train", config)
    # The lock a sweep takes on its teachers (the same directory): one process at a time trains a run directory.
    with directory_lock(out):
        done = finished(out, TEACHER_METRICS)  # None, too, if it was damaged: its files are moved aside
        if done is not None:
            print(f"already done: {out}", file=sys.stderr)
            return done
        remove_stale_temporaries(out)
        finish_superseding(out)  # a damaged run's move aside, if a kill cut it short: it must not resume from there
        data = load_data(data_cfg, args.data_dir, args.download)
        loss_fn = cross_entropy
        if teacher is not None:
            loss_fn = DistillLoss(teacher.to(device, memory_format=torch.channels_last), distill)
        threads = start_teacher(out, config)  # a resumed run goes on with the params.json and threads it began with
        began = time.perf_counter()
        with torch_threads(threads):
            result = train(model, data, train_cfg, device=device, loss_fn=loss_fn,
                           checkpoint_path=out / "checkpoint.pt", run_config=config, progress=not args.no_progress,
                           on_epoch=lambda history: write_log_csv(out / "log.csv", history))  # fmt: skip
            environment_record = environment(device)
        # Written again here: a run killed after its last checkpoint resumes with nothing left to train.
        history = result.pop("history")
        write_log_csv(out / "log.csv", history)
        save_model(out / "model.pt", arch, model)
        metrics = {**result, **divergence(out, result, history), "macs": macs(arch), "params": params(arch),
                   "run_dir": str(out), "wall_seconds": time.perf_counter() - began, "environment": environment_record,
                   "code": code_identity(code_packages(None))}  # fmt: skip
        write_json(out / "metrics.json", metrics)
        return finite(metrics)  # printed as the file holds it: strict JSON, null for a diverged loss

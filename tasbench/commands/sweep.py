"""`tas-bench sweep SPEC`: expand a sweep spec and run what is not done yet.

    tas-bench sweep benchmarks/proxy.yaml                          # sequential, here
    tas-bench sweep benchmarks/proxy.yaml --workers 2 --set seeds=[0]
    tas-bench sweep cifar10 --data-dir ~/data --executor ray --address auto --gpus-per-run 1   # a GPU per run
    tas-bench sweep benchmarks/cifar10.yaml --data-dir ~/data --dry-run   # the plan, nothing runs

Progress and the plan go to stderr; stdout gets one JSON object (the runs and their headline metrics).
"""

from __future__ import annotations

import argparse
import os
import sys

from tasbench.device import DEVICE_HELP, check_device_name, parse_device
from tasbench.errors import ConfigError
from tasbench.wandb_log import WandbSettings  # light: it imports wandb only when a run starts logging


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sweep", help="run a sweep spec (benchmarks/*.yaml): teachers, pruning, retraining")
    p.add_argument("spec", help="a sweep spec: a YAML file, or a shipped one by name (cifar10, proxy, ...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field by dotted path, value in YAML: seeds=[0,1], teacher.epochs=2")
    p.add_argument("--out", default="runs", help="results root (default: runs)")
    p.add_argument("--data-dir", help="directory holding CIFAR (python version) or ImageNet (train/ and val/)")
    p.add_argument("--executor", default="local", help="local or ray (default: local)")
    p.add_argument("--workers", type=int, default=1, help="parallel runs: local processes or Ray tasks")
    p.add_argument("--threads", type=int, default=0, help="torch threads per worker (default: cores / workers)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument("--gpus-per-run", type=float, default=0, help="Ray only: GPUs each run reserves")
    p.add_argument("--latency-batches", default="1,256", help="batch sizes timed for latency (default: 1,256)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dry-run", action="store_true", help="print the plan (done, to do, estimated cost) and stop")
    p.add_argument("--wandb", default=os.environ.get("WANDB_MODE", "offline"),
                   help="W&B mode: offline (default, or $WANDB_MODE), online, disabled")
    p.add_argument("--wandb-project", default="tas-bench", help="W&B project (default: tas-bench)")
    p.add_argument("--wandb-timeout", type=float, default=WandbSettings.init_timeout,
                   help="seconds an online W&B start may take before the run logs offline instead (default: 30)")
    p.set_defaults(command=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> dict:
    import torch  # here, not at the top: `tas-bench --help` and `sweep --help` start without torch

    from tasbench.data import load_data
    from tasbench.executors import Executor, WorkerDied, execute
    from tasbench.plan import describe
    from tasbench.sweep import load_sweep

    if args.executor == "ray":  # each Ray task resolves the device on its own node
        check_device_name(args.device)
    else:
        parse_device(args.device)
    sweep = load_sweep(args.spec, args.set)
    try:
        latency_batches = tuple(int(b) for b in args.latency_batches.split(","))
    except ValueError:
        raise ConfigError(f"--latency-batches must be comma-separated ints, got {args.latency_batches!r}") from None
    if args.threads:
        torch.set_num_threads(args.threads)  # this process's runs (sequential); worker processes set their own
    executor = Executor(args.executor, args.workers, args.address, args.threads, args.gpus_per_run)
    if sweep.runs[0].data.dataset != "proxy":
        # Stop before anything runs when the data are missing or are another data set: the error says where we
        # looked and how to provide them. A sweep never falls back to other data.
        load_data(sweep.runs[0].data, args.data_dir)
    print(describe(sweep.name, sweep.runs, args.out), file=sys.stderr, flush=True)
    if args.dry_run:
        return {"sweep": sweep.name, "dry_run": True, "runs": len(sweep.runs)}
    wandb = None
    if args.wandb != "disabled":
        wandb = WandbSettings(mode=args.wandb, project=args.wandb_project, group_prefix=sweep.name,
                              init_timeout=args.wandb_timeout)  # fmt: skip
    try:
        results = execute(sweep.runs, args.out, executor, device=args.device, data_dir=args.data_dir, wandb=wandb,
                          latency_batches=latency_batches, log=lambda line: print(line, file=sys.stderr, flush=True))
    except WorkerDied as e:  # not bad input, but one clear line too; exit status 1
        print(f"tas-bench: {e}", file=sys.stderr)
        sys.exit(1)
    keys = ("hash", "label", "network", "ratio", "recipe", "seed", "top1", "unpruned_top1", "macs",
            "flop_reduction_pct")  # fmt: skip
    return {"sweep": sweep.name, "root": args.out, "runs": [{k: m[k] for k in keys} for m in results]}

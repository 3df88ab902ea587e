"""`tas-bench sweep SPEC`: expand a sweep spec and run what is not done yet.

    tas-bench sweep benchmarks/proxy.yaml                          # sequential, here
    tas-bench sweep benchmarks/proxy.yaml --workers 2 --set seeds=[0]
    tas-bench sweep cifar10 --data-dir ~/data --executor ray --address auto --gpus-per-run 1   # a GPU per run
    tas-bench sweep cifar10 --data-dir ~/data --device cuda --runs-per-gpu 4     # every GPU here, 4 runs each
    tas-bench sweep cifar10 --data-dir /shared/cifar --out /shared/runs --device cuda --executor slurm \
        --slurm-partition gpu --gpus-per-run 1                                   # a Slurm job array per stage
    tas-bench sweep benchmarks/cifar10.yaml --data-dir ~/data --dry-run   # the plan, nothing runs
    tas-bench sweep benchmarks/proxy.yaml --rerun-stale            # recompute runs computed by other code

Progress and the plan go to stderr; stdout gets one JSON object (the runs and their headline metrics, and the
failed ones). Exit status: 0 all runs finished, 1 some failed (the others finished), 2 bad input, 130/143
interrupted by SIGINT/SIGTERM (what finished is kept; the same command resumes).
"""

from __future__ import annotations

import argparse
import os
import sys

from tasbench.bounds import MAX_BATCH, MAX_THREADS, MAX_WORKERS, float_flag, int_flag, path_flag
from tasbench.cli.args import add_compile_arg
from tasbench.cli.bars import close_bars
from tasbench.device import DEVICE_HELP, device_name_flag, parse_device
from tasbench.errors import ConfigError, interrupt_signal
from tasbench.report.wandb_log import WandbSettings  # light: it imports wandb only when a run starts logging
from tasbench.runner.slurm import MAX_SLURM_TIME, SLURM_TIME

KEYS = ("hash", "label", "network", "ratio", "recipe", "seed", "top1", "unpruned_top1", "macs", "flop_reduction_pct")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sweep", help="run a sweep spec (benchmarks/*.yaml): teachers, pruning, retraining")
    p.add_argument("spec", help="a sweep spec: a YAML file, or a shipped one by name (cifar10, proxy, ...)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field by dotted path, value in YAML: seeds=[0,1], teacher.epochs=2",
    )
    p.add_argument("--out", type=path_flag, default="runs", help="results root (default: runs)")
    p.add_argument(
        "--data-dir", type=path_flag, help="directory holding CIFAR (python version) or ImageNet (train/ and val/)"
    )
    p.add_argument("--executor", default="local", help="local, ray or slurm (default: local)")
    p.add_argument(
        "--workers",
        type=int_flag(1, MAX_WORKERS),
        help="parallel runs: local processes or Ray tasks (default: 1; local on --device cuda: GPUs x --runs-per-gpu)",
    )
    p.add_argument(
        "--runs-per-gpu",
        type=int_flag(1, MAX_WORKERS),
        default=1,
        help="local, --device cuda: workers sharing each visible GPU (default: 1; small CIFAR nets: 4)",
    )
    p.add_argument(
        "--threads",
        type=int_flag(0, MAX_THREADS),
        default=0,
        help="torch threads per worker (default: cores / workers)",
    )
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument(
        "--gpus-per-run", type=float_flag(0), default=0, help="Ray, Slurm: GPUs each run reserves (Slurm: whole GPUs)"
    )
    p.add_argument("--slurm-partition", help="Slurm: the partition the jobs go to (default: the cluster's)")
    p.add_argument(
        "--slurm-time",
        type=int_flag(1, MAX_SLURM_TIME),
        default=SLURM_TIME,
        help=f"Slurm: minutes per job (default: {SLURM_TIME}); a job that reaches it is requeued and resumes",
    )
    p.add_argument(
        "--slurm-array-parallelism",
        type=int_flag(1, MAX_WORKERS),
        default=64,
        help="Slurm: jobs of an array running at once (default: 64)",
    )
    p.add_argument(
        "--slurm-cluster",
        default="slurm",
        help="slurm (default), or local: the same jobs as submitit's local processes on this machine (a test)",
    )
    p.add_argument(
        "--latency-batches", type=batch_sizes, default=(1, 256), help="batch sizes timed for latency (default: 1,256)"
    )
    p.add_argument("--device", type=device_name_flag, default="auto", help=DEVICE_HELP)
    add_compile_arg(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (done, stale, failed, invalid, to do; each run's budget; estimated time) and stop",
    )
    p.add_argument(
        "--throughput",
        type=path_flag,
        help="with --dry-run: estimate from this file of `tas-bench bench gpu --out` (GPU-hours of that GPU) "
        "instead of timing training steps here",
    )
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="recompute finished runs (and teachers) computed by other code; the old results are kept in "
        "<run>/superseded-<time>/",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every run of the spec and its teacher (old results are kept in <run>/superseded-<time>/)",
    )
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first failing run (default: record it, go on with the others, exit status 1)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are drawn only when stderr is a terminal anyway)",
    )
    p.add_argument(
        "--wandb",
        default=os.environ.get("WANDB_MODE", "offline"),
        help="W&B mode: offline (default, or $WANDB_MODE), online, disabled",
    )
    p.add_argument("--wandb-project", default="tas-bench", help="W&B project (default: tas-bench)")
    p.add_argument(
        "--wandb-timeout",
        type=float_flag(0, low_open=True),
        default=WandbSettings.init_timeout,
        help="seconds an online W&B start may take before the run logs offline instead (default: 30)",
    )
    p.set_defaults(command=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> dict:
    import torch  # here, not at the top: `tas-bench --help` and `sweep --help` start without torch

    from tasbench.atomic import check_output_dir
    from tasbench.data import load_data
    from tasbench.runner.executors import Executor, RunsFailed, WorkerDied, execute, worker_threads
    from tasbench.runner.gpus import default_workers
    from tasbench.runner.plan import describe
    from tasbench.runner.spec import check_runs, invalid_runs, load_sweep

    if args.executor == "local":  # a Ray task or Slurm job resolves the device on its node; here, it must exist here
        parse_device(args.device)
    sweep = load_sweep(args.spec, args.set)
    check_output_dir(args.out, "--out")
    if args.force and args.rerun_stale:
        raise ConfigError(
            "give --rerun-stale (recompute stale runs) or --force (recompute every run), not both: "
            "--force already recomputes the stale ones"
        )
    rerun = "all" if args.force else "stale" if args.rerun_stale else ""
    if args.threads:
        torch.set_num_threads(args.threads)  # this process's runs (sequential); worker processes set their own
    workers = args.workers or (default_workers(args.device, args.runs_per_gpu) if args.executor == "local" else 1)
    executor = Executor(
        args.executor,
        workers,
        args.address,
        args.threads,
        args.gpus_per_run,
        runs_per_gpu=args.runs_per_gpu,
        slurm_partition=args.slurm_partition,
        slurm_time=args.slurm_time,
        slurm_array_parallelism=args.slurm_array_parallelism,
        slurm_cluster=args.slurm_cluster,
    )
    wandb = None  # checked here, so that a dry run names a bad mode too
    if args.wandb != "disabled":
        wandb = WandbSettings(
            mode=args.wandb, project=args.wandb_project, group_prefix=sweep.name, init_timeout=args.wandb_timeout
        )
    if sweep.runs[0].data.dataset != "proxy":
        # Stop before anything runs when the data are missing or are another data set: the error says where we
        # looked and how to provide them. A sweep never falls back to other data.
        load_data(sweep.runs[0].data, args.data_dir)
    if args.fail_fast and not args.dry_run:
        check_runs(sweep.runs)  # one line naming a run that cannot work, before anything (the plan included)
    threads = worker_threads(executor)  # as each worker will have
    throughput = None
    if args.throughput:
        if not args.dry_run:
            raise ConfigError("--throughput estimates a plan; it needs --dry-run")
        from tasbench.runner.throughput import read_throughput

        throughput = read_throughput(args.throughput)
    print(
        describe(
            sweep.name,
            sweep.runs,
            args.out,
            workers=executor.workers,
            threads=threads,
            device=args.device,
            calibrate=args.dry_run,
            rerun=rerun,
            throughput=throughput,
        ),
        file=sys.stderr,
        flush=True,
    )
    if args.dry_run:
        invalid = invalid_runs(sweep.runs)
        out = {"sweep": sweep.name, "dry_run": True, "runs": len(sweep.runs)}
        return {**out, "invalid": len(invalid), "passed": False} if invalid else out
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    failures = []
    try:
        results = execute(
            sweep.runs,
            args.out,
            executor,
            device=args.device,
            data_dir=args.data_dir,
            wandb=wandb,
            latency_batches=args.latency_batches,
            log=log,
            rerun=rerun,
            fail_fast=args.fail_fast,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except RunsFailed as e:
        results, failures = e.results, e.failures
    except WorkerDied as e:  # not bad input, but one clear line too; exit status 1
        print(f"tas-bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (cli.main makes it an errors.Interrupted)
        signum = interrupt_signal(e)
        done = sum((cfg.directory(args.out) / "metrics.json").exists() for cfg in sweep.runs)
        again = " without --force" if args.force else ""
        close_bars()
        print(
            f"tas-bench: interrupted by {signum.name}: {done} of {len(sweep.runs)} runs finished and kept; run the "
            f"same command{again} to resume the others",
            file=sys.stderr,
        )
        sys.exit(128 + signum)
    if failures:
        print(
            f"tas-bench: {len(failures)} of {len(sweep.runs)} runs failed; the others finished (the errors and "
            f"tracebacks are in each run's error.json; the same command retries them):",
            file=sys.stderr,
        )
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    out = {"sweep": sweep.name, "root": args.out, "runs": [{k: m[k] for k in KEYS} for m in results if m]}
    return {**out, "failed": failures, "passed": False} if failures else out


def batch_sizes(text: str) -> tuple[int, ...]:
    """`--latency-batches 1,256`: comma-separated batch sizes in [1, MAX_BATCH], checked before anything trains."""
    parse = int_flag(1, MAX_BATCH)
    try:
        return tuple(parse(b) for b in text.split(","))
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"comma-separated batch sizes, each {e}") from None

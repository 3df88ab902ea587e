"""`tas-bench bench NAME`: time a hot path, a micro-benchmark registered like the pruners.

tas-bench bench search-step --network resnet56 --batch-size 64 --steps 10      # seconds per TAS search step
"""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    # its options are added only when `bench` is chosen: they come from modules that import torch
    commands.add_parser("bench", _bench_options, help="time a hot path (a registered micro-benchmark)")


def _bench_options(p: argparse.ArgumentParser) -> None:
    from tasbench.microbench import benchmarks  # loads the registered benchmarks, which import torch

    names = p.add_subparsers(required=True, metavar="benchmark")
    for bench in benchmarks().values():
        b = names.add_parser(bench.name, help=bench.summary)
        bench.add_arguments(b)
        b.add_argument(
            "--no-progress",
            action="store_true",
            help="accepted as by every long command (a benchmark draws no progress bar)",
        )
        b.set_defaults(command=bench.run)

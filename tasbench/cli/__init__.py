"""`tas-bench`: count, train and prune from the command line, and run, report and check the benchmark's sweeps.

    tas-bench flops --network resnet56 --dataset cifar10 [--shortcut official|zero-pad] [--json]
    tas-bench flops --tas-config tasbench/official_configs/C010-ResNet56.config   # its ratio to the full ResNet-56
    tas-bench train [--network resnet20 --dataset proxy --epochs 10]       # -> runs/train/<hash>/
    tas-bench prune --method uniform --network resnet56 --dataset cifar10 --ratio 0.5
    tas-bench prune --method l1 --weights model.pt --ratio 0.5          # L1 and FPGM score a trained net's filters
    tas-bench prune --method l1 --network resnet56 --shortcut zero-pad --opt variant=B   # Li et al.'s fixed shape
    tas-bench bench search-step --network resnet56 --batch-size 64 --steps 10      # seconds per TAS search step
    tas-bench sweep proxy                                                # a shipped spec (benchmarks/proxy.yaml)

Every command prints one JSON object on stdout, except `flops`, which prints a summary (`--json`: the JSON object).
Commands that take a device default to `--device auto` (a CUDA GPU when torch sees one). Bad input (an unknown
name, a ratio outside (0, 1], a malformed file, a missing data directory) prints one line `tas-bench: error: ...`
naming the value and what is allowed, and exits with status 2. Ctrl-C (SIGINT) or SIGTERM stops any command with
one line saying what is kept and how to go on, and exit status 130 or 143.

Start-up imports no torch, pandas or wandb: a command imports what it needs when it runs, and the options of
`flops`, `train`, `prune` and `bench` (built from torch-importing modules) are added only when that command is
chosen, so `tas-bench --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable

from tasbench.cli import bench, compare, flops, prune, regress, report, sweep, train
from tasbench.cli.bars import close_bars
from tasbench.compiled import VARIABLE as COMPILE
from tasbench.errors import ConfigError, interrupt_signal, raise_interrupted
from tasbench.installation import version


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Commands(argparse._SubParsersAction):
    """Subcommands whose options can be added once the command is chosen: `add_parser(name, options=f)` calls
    `f(parser)` only when `name` is on the command line (or asked for help). The options of `train` and `prune`
    come from config dataclasses in modules that import torch (2-3 s), which `--help` should not wait for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def add_parser(self, name: str, options: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs):
        parser = super().add_parser(name, **kwargs)
        if options is not None:
            self._deferred[name] = options
        return parser

    def __call__(self, parser, namespace, values, option_string=None):
        if values[0] in self._deferred:
            self._deferred.pop(values[0])(self.choices[values[0]])
        super().__call__(parser, namespace, values, option_string)


class _Version(argparse.Action):
    """`--version`, worked out when asked for (it may run git), not every time the parser is built."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version())  # on stdout, as argparse's own version action prints
        parser.exit(0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM stops a command as Ctrl-C does. Only the main thread may set a handler (a test may call main elsewhere).
    here = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_interrupted) if here else None
    compile_before = os.environ.get(COMPILE)
    if getattr(args, "compile", False):  # read by every training loop here and in the workers (compiled.py)
        os.environ[COMPILE] = "1"
    try:
        result = args.command(args)
    except ConfigError as e:
        print(f"tas-bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # one line, not a traceback (`sweep` says what it kept itself)
        signum = interrupt_signal(e)
        close_bars()
        print(f"tas-bench: interrupted by {signum.name}; {getattr(args, 'resumes', RERUN)}", file=sys.stderr)
        return 128 + signum
    finally:
        if here:
            signal.signal(signal.SIGTERM, previous)
        if compile_before is None:  # as it was: a test calls main() many times in one process
            os.environ.pop(COMPILE, None)
        else:
            os.environ[COMPILE] = compile_before
    try:  # a dict for machines (JSON), or a text for people
        print(result if isinstance(result, str) else json.dumps(result, indent=2), flush=True)
    except BrokenPipeError:  # e.g. `tas-bench flops ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if isinstance(result, dict) and result.get("passed") is False else 0  # a check that found a regression


RERUN = "nothing was left half-written; run the same command again"  # what an interrupted command says to do


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tas-bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--version", action=_Version, help="print the version (and the git commit, run from a checkout) and exit"
    )
    commands = parser.add_subparsers(required=True, metavar="command", action=_Commands)
    for module in (flops, train, prune, bench, sweep, report, compare, regress):  # one module per command
        module.register(commands)
    return parser

"""`tas-bench`: count, train and prune from the command line, and run, report and check the benchmark's sweeps.

    tas-bench flops --network resnet56 --dataset cifar10 [--shortcut official|zero-pad] [--json]
    tas-bench flops --tas-config tasbench/official_configs/C010-ResNet56.config   # its ratio to the full ResNet-56
    tas-bench train [--network resnet20 --dataset proxy --epochs 10]       # -> runs/train/<hash>/
    tas-bench prune --method uniform --network resnet56 --dataset cifar10 --ratio 0.5
    tas-bench prune --method l1 --weights model.pt --ratio 0.5          # L1 and FPGM score a trained net's filters
    tas-bench prune --method l1 --network resnet56 --shortcut zero-pad --variant B   # Li et al.'s fixed shape
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
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tasbench import overrides
from tasbench.arch import SHORTCUTS, Arch
from tasbench.bounds import MAX_SEED, int_flag, path_flag
from tasbench.commands import close_bars, compare, regress, report, sweep
from tasbench.device import DEVICE_HELP, parse_device
from tasbench.errors import ConfigError, choice_error, interrupt_signal, raise_interrupted
from tasbench.installation import version
from tasbench.presets import PRESETS, full_width, preset, preset_of

if TYPE_CHECKING:
    from torch import nn


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
    try:  # a dict for machines (JSON), or a text for people
        print(result if isinstance(result, str) else json.dumps(result, indent=2), flush=True)
    except BrokenPipeError:  # e.g. `tas-bench flops ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if isinstance(result, dict) and result.get("passed") is False else 0  # a check that found a regression


RERUN = "nothing was left half-written; run the same command again"  # what an interrupted command says to do


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tas-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action=_Version,
                        help="print the version (and the git commit, run from a checkout) and exit")  # fmt: skip
    commands = parser.add_subparsers(required=True, metavar="command", action=_Commands)
    commands.add_parser("flops", _flops_options, help="MACs and parameters of a network, as the TAS paper counts them")
    commands.add_parser("train", _train_options,
                        help="train a network (plain or with knowledge distillation) into runs/")  # fmt: skip
    commands.add_parser("prune", _prune_options, help="prune a network to a FLOP ratio; prints its shape and FLOPs")
    commands.add_parser("bench", _bench_options, help="time a hot path (a registered micro-benchmark)")
    for module in (sweep, report, compare, regress):  # the runner's commands live in tasbench/commands/
        module.register(commands)
    return parser


def _flops_options(p: argparse.ArgumentParser) -> None:
    from tasbench.data import DATASETS

    _add_network_args(p)
    p.add_argument(
        "--dataset", help=f"sets the number of classes: {', '.join(DATASETS)} (default: cifar10 or imagenet)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (the whole arch included)")
    p.set_defaults(command=cmd_flops)


def _train_options(p: argparse.ArgumentParser) -> None:
    from tasbench.distill import DistillConfig
    from tasbench.train import TrainConfig

    _add_network_args(p)
    p.add_argument("--weights", type=path_flag,
                   help="start from this model file (its architecture and weights), e.g. a pruned net")
    _add_data_args(p)
    overrides.add_arguments(p, TrainConfig)
    p.add_argument("--teacher", type=path_flag, help="distil from this model file (the unpruned net)")
    p.add_argument("--kd-alpha", type=float, default=DistillConfig.alpha, help="weight of the KD term")
    p.add_argument("--kd-temperature", type=float, default=DistillConfig.temperature, help="KD temperature")
    p.add_argument("--out", type=path_flag, default="runs", help="results root (default: runs)")
    _add_device_args(p)
    p.set_defaults(command=cmd_train, resumes="the run keeps its last finished epoch (checkpoint.pt); run the same "
                                              "command to resume it")  # fmt: skip


def _prune_options(p: argparse.ArgumentParser) -> None:
    from tasbench.pruner import pruner_names

    p.add_argument("--method", required=True, help=f"one of: {', '.join(pruner_names())}")
    p.add_argument("--ratio", type=float, help="target FLOPs as a fraction of the unpruned, in (0, 1]")
    p.add_argument("--variant", help="a paper-faithful shape instead of --ratio (l1: A or B, for resnet56/110)")
    _add_network_args(p)
    p.add_argument("--weights", type=path_flag,
                   help="the trained unpruned net as a model file, for methods that score its weights "
                                     "(l1, fpgm; default: a fresh seeded initialisation)")  # fmt: skip
    p.add_argument("--seed", type=int_flag(0, MAX_SEED), default=0)
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--save", type=path_flag, help="write the pruned net (architecture + weights) to this model file")
    p.add_argument("--save-tas-config", type=path_flag,
                   help="write the pruned shape in the official TAS .config format")
    p.add_argument("--workdir", type=path_flag,
                   help="where a long pruner (a TAS search) keeps its resumable checkpoint")
    _add_data_args(p)
    _add_device_args(p)
    p.set_defaults(command=cmd_prune, resumes="run the same command again (a TAS search given --workdir resumes "
                                              "from its last finished epoch)")  # fmt: skip


def _bench_options(p: argparse.ArgumentParser) -> None:
    from tasbench.bench import benchmarks  # loads the registered benchmarks, which import torch

    names = p.add_subparsers(required=True, metavar="benchmark")
    for bench in benchmarks().values():
        b = names.add_parser(bench.name, help=bench.summary)
        bench.add_arguments(b)
        b.add_argument("--no-progress", action="store_true",
                       help="accepted as by every long command (a benchmark draws no progress bar)")  # fmt: skip
        b.set_defaults(command=bench.run)


def _add_network_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--tas-config", type=path_flag,
                   help="an official TAS .config file (e.g. tasbench/official_configs/*.config)")
    p.add_argument("--shortcut", default="official", help=f"one of: {', '.join(SHORTCUTS)} (default: official)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    from tasbench.data import DataConfig

    overrides.add_arguments(p, DataConfig)
    p.add_argument("--data-dir", type=path_flag,
                   help="directory holding CIFAR (python version) or ImageNet (train/ and val/)")
    p.add_argument("--download", action="store_true", help="download CIFAR into --data-dir if it is missing")


def _add_device_args(p: argparse.ArgumentParser) -> None:
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
    num_classes, family, *_ = DATASETS[dataset]
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
    num_classes, family, *_ = DATASETS[dataset]
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


def cmd_flops(args: argparse.Namespace) -> dict | str:
    from tasbench.flops import macs, params

    arch, dataset = named_arch(args, args.dataset)
    full = full_width(arch)  # the net itself, unless --tas-config gave a pruned shape
    counted = {"network": args.network or args.tas_config, "dataset": dataset, "shortcut": arch.shortcut,
               "macs": macs(arch), "params": params(arch), "macs_unpruned": macs(full), "params_unpruned": params(full),
               "flop_ratio": macs(arch) / macs(full), "arch": arch.to_dict()}  # fmt: skip
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


def cmd_train(args: argparse.Namespace) -> dict:
    import torch

    from tasbench.atomic import check_output_dir, finite, remove_stale_temporaries, write_json
    from tasbench.checkpoint import load_model, save_model
    from tasbench.code_identity import code_identity, code_packages
    from tasbench.data import DataConfig, load_data
    from tasbench.distill import DistillConfig, DistillLoss
    from tasbench.experiment import start_teacher
    from tasbench.flops import macs, params
    from tasbench.locks import directory_lock
    from tasbench.run_files import TEACHER_METRICS, divergence, finished
    from tasbench.runs import environment, file_digest, run_dir, torch_threads, write_log_csv
    from tasbench.seeds import derive_seed
    from tasbench.supersede import finish_superseding
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


def cmd_prune(args: argparse.Namespace) -> dict:
    from tasbench.atomic import check_output_dir, write_text
    from tasbench.checkpoint import save_model
    from tasbench.data import DataConfig, load_data
    from tasbench.flops import macs, params
    from tasbench.official_config import format_tas_config
    from tasbench.pruner import PruneRequest, get_pruner, pruner_names
    from tasbench.seeds import derive_seed

    device = parse_device(args.device)
    pruner = get_pruner(args.method)
    if args.workdir:
        check_output_dir(args.workdir, "--workdir")
    for flag, file in (("--save", args.save), ("--save-tas-config", args.save_tas_config)):
        if file:
            check_output_dir(Path(file).parent, flag, given=file)
    if args.weights and not pruner.reads_weights:
        raise ConfigError(f"--method {args.method} does not read --weights: it takes the unpruned net's shape only, "
                          "and its pruned net starts from a fresh initialisation; give the shape with --network or "
                          "--tas-config, and use the trained net as the retraining's teacher (tas-bench train "
                          "--teacher)")  # fmt: skip
    options = overrides.parse_overrides(pruner.options, args.opt)
    if args.variant is not None:
        if "variant" not in [f.name for f in dataclasses.fields(options)]:
            with_variants = [n for n in pruner_names() if "variant" in
                             [f.name for f in dataclasses.fields(get_pruner(n).options)]]  # fmt: skip
            raise ConfigError(f"method {args.method!r} has no --variant (methods with paper variants: "
                              f"{', '.join(with_variants)}); give --ratio")  # fmt: skip
        options = dataclasses.replace(options, variant=args.variant)
    if getattr(options, "variant", "") and args.ratio is not None:  # --variant V and --opt variant=V alike
        raise ConfigError("give --ratio (a FLOP target) or --variant (a paper's fixed shape), not both")
    if not getattr(options, "variant", "") and args.ratio is None:
        raise ConfigError("give --ratio R (a FLOP target in (0, 1]) or, for --method l1, --variant A|B")
    arch, model, dataset = unpruned_net(args, args.dataset, derive_seed(args.seed, "unpruned-init"))
    data_cfg = overrides.from_namespace(DataConfig, args, dataset=dataset)
    # Options may ask for data too (FPGM's soft mode trains while it prunes).
    needs_data = pruner.needs_data or getattr(options, "needs_data", False)
    data = load_data(data_cfg, args.data_dir, args.download) if needs_data else None
    # A variant fixes the shape by itself; the request's ratio is then only a placeholder the pruner ignores.
    ratio = args.ratio if args.ratio is not None else 1.0
    request = PruneRequest(arch, model.to(device), ratio, data, args.seed, device, workdir=args.workdir,
                           progress=not args.no_progress)  # fmt: skip
    pruned = pruner.prune(request, options)
    if pruner.reads_weights and not args.weights:  # said once it worked: bad input stays one line
        net = args.network or args.tas_config
        print(f"tas-bench: warning: --method {args.method} pruned a freshly initialised {net} (--seed {args.seed}), "
              "not a trained net; give --weights MODEL.pt to prune a trained one", file=sys.stderr)  # fmt: skip
    if args.save:
        save_model(args.save, pruned.arch, pruned.model, method=args.method, ratio=args.ratio, info=pruned.info)
    if args.save_tas_config:
        write_text(args.save_tas_config, format_tas_config(pruned.arch))
    return {
        "method": args.method, "options": dataclasses.asdict(options), "ratio": args.ratio,
        "macs": macs(pruned.arch), "params": params(pruned.arch),
        "macs_unpruned": macs(arch), "params_unpruned": params(arch),
        "flop_ratio": macs(pruned.arch) / macs(arch),
        "arch": pruned.arch.to_dict(), "info": pruned.info,
        "saved": [path for path in (args.save, args.save_tas_config) if path],
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""`tas-bench bench search-step`: the time of one TAS search step (one weight step + one architecture step).

    $ tas-bench bench search-step --network resnet20 --batch-size 64 --steps 20 --threads 2
    {"benchmark": "search-step", "network": "resnet20", "seconds_per_step": 0.3..., ...}

The step is `tas.search.search_step`, the loop's own, on random 32x32 (CIFAR) or 224x224 (ImageNet) images.
"""

from __future__ import annotations

import argparse

import torch

from tasbench.arch import IMAGE_SIZE
from tasbench.bench import Benchmark, time_steps
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import PRESETS, preset

from tas.search import SHAPES, SearchConfig, build_search_model, make_optimizers, search_step
from tas.search_space import search_space


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="resnet20", help=f"one of: {', '.join(PRESETS)} (default: resnet20)")
    p.add_argument("--batch-size", type=int, default=64, help="images per half-step (default: 64)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--k", type=int, default=2, help="widths sampled per conv (default: 2; 0 = all)")
    p.add_argument("--shapes", default="auto", help=f"one of: {', '.join(SHAPES)} (default: auto)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")


def run(args: argparse.Namespace) -> dict:
    for name in ("batch_size", "steps", "threads"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {args.device!r}; allowed: cpu, cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but this machine has no CUDA GPU; use --device cpu")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    family = PRESETS[args.network]().family if args.network in PRESETS else "cifar"
    arch = preset(args.network, 10, family)
    cfg = SearchConfig(k=args.k, shapes=args.shapes)
    model = build_search_model(search_space(arch), cfg, 0, device)
    w_opt, a_opt = make_optimizers(model, cfg)
    size = IMAGE_SIZE[arch.family]
    g = torch.Generator().manual_seed(0)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.randn(args.batch_size, 3, size, size, generator=g)
        labels = torch.randint(0, 10, (args.batch_size,), generator=g)
        return images.to(device).contiguous(memory_format=torch.channels_last), labels.to(device)

    w_batch, a_batch = batch(), batch()
    gumbel = torch.Generator(device=device).manual_seed(0)
    goal = (0.5 * macs(arch), 0.05 * macs(arch), cfg.flop_weight)
    timing = time_steps(lambda: search_step(model, w_opt, a_opt, w_batch, a_batch, 5.0, gumbel, goal),
                        args.steps, args.warmup, device)  # fmt: skip
    return {"benchmark": "search-step", "network": args.network, "batch_size": args.batch_size,
            "image_size": size, "threads": torch.get_num_threads(), "device": str(device),
            "shapes": "static" if model.static_shapes else "dynamic", "k": args.k, **timing,
            "images_per_second": 2 * args.batch_size / timing["seconds_per_step"]}  # fmt: skip


BENCHMARK = Benchmark(name="search-step", add_arguments=add_arguments, run=run,
                      summary="one TAS search step: a weight step and an architecture step")  # fmt: skip

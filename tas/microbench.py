"""`tas-bench bench search-step`: the time of one TAS search step (one weight step + one architecture step).

    $ tas-bench bench search-step --network resnet20 --batch-size 64 --steps 20 --threads 2
    {"benchmark": "search-step", "network": "resnet20", "seconds_per_step": 0.3..., ...}

The step is `tas.search.search_step`, the loop's own, on random 32x32 (CIFAR) or 224x224 (ImageNet) images.
Shared machines are noisy, so the same run also times, interleaved with ours, two references on the same batches:
`train_step`, one plain SGD step of the unpruned net (a search step is two forward/backward passes, so about twice
that is the floor), and with `--official`, the search step computed the released code's way
(`tas.reference_forward`). Compare ratios across runs, not seconds. The peak memory of one search step is
printed too (`peak_rss_mib` and its growth over the step's start on a CPU, the allocator's peak on a GPU).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from tas.reference_forward import official_forward
from tas.search import SHAPES, SearchConfig, build_search_model, make_optimizers, search_step
from tas.search_space import WIDTH_RATIOS, search_space
from tasbench.arch import IMAGE_SIZE
from tasbench.bounds import MAX_BATCH, MAX_THREADS, int_flag
from tasbench.device import DEVICE_HELP, device_flag
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.microbench import Benchmark, peak_memory_mib, time_interleaved
from tasbench.presets import PRESETS, preset
from tasbench.resnet import build_resnet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--network", default="resnet20", help=f"one of: {', '.join(PRESETS)} (default: resnet20)")
    p.add_argument("--batch-size", type=int_flag(1, MAX_BATCH), default=64, help="images per half-step (default: 64)")
    p.add_argument("--steps", type=int_flag(1, 100_000), default=10, help="timed steps (default: 10)")
    p.add_argument("--warmup", type=int_flag(0, 100_000), default=2, help="untimed steps first (default: 2)")
    p.add_argument("--threads", type=int_flag(1, MAX_THREADS), default=2, help="torch CPU threads (default: 2)")
    p.add_argument(
        "--k", type=int_flag(0, len(WIDTH_RATIOS)), default=2, help="widths sampled per conv (default: 2; 0 = all)"
    )
    p.add_argument("--shapes", default="auto", help=f"one of: {', '.join(SHAPES)} (default: auto)")
    p.add_argument("--device", type=device_flag, default="auto", help=DEVICE_HELP)
    p.add_argument("--official", action="store_true", help="also time the official formulation (slow)")


def run(args: argparse.Namespace) -> dict:
    device = args.device
    torch.set_num_threads(args.threads)
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
    plain = build_resnet(arch).to(device, memory_format=torch.channels_last)
    sgd = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def train_step() -> None:
        loss = F.cross_entropy(plain(w_batch[0]), w_batch[1])
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    def official(images: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
        return official_forward(model, images, *model.sample(tau, generator))

    steps = {
        "search_step": lambda: search_step(model, w_opt, a_opt, w_batch, a_batch, 5.0, gumbel, goal),
        "train_step": train_step,
    }
    if args.official:
        if model.static_shapes:
            raise ConfigError("--official times the dynamic-shape formulation; add --shapes dynamic")
        steps["official_step"] = lambda: search_step(
            model, w_opt, a_opt, w_batch, a_batch, 5.0, gumbel, goal, forward=official
        )
    memory = peak_memory_mib(steps["search_step"], device)  # first, while the process's high-water mark is low
    timing = time_interleaved(steps, args.steps, args.warmup, device)
    ours = timing["search_step"]["seconds_per_step"]
    out = {
        "benchmark": "search-step",
        "network": args.network,
        "batch_size": args.batch_size,
        "image_size": size,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "shapes": "static" if model.static_shapes else "dynamic",
        "k": args.k,
        **timing["search_step"],
        "images_per_second": 2 * args.batch_size / ours,
        "train_step_seconds": timing["train_step"]["seconds_per_step"],
        "ratio_to_train_step": ours / timing["train_step"]["seconds_per_step"],
        **memory,
    }
    if args.official:
        out["official_step_seconds"] = timing["official_step"]["seconds_per_step"]
        out["speedup_over_official"] = out["official_step_seconds"] / ours
    return out


BENCHMARK = Benchmark(
    name="search-step",
    add_arguments=add_arguments,
    run=run,
    summary="one TAS search step: a weight step and an architecture step",
)

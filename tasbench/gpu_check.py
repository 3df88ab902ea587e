"""`tas-bench bench gpu`: the GPU check a maintainer runs on a CUDA machine (`nox -s gpu_check` runs the tests marked
`cuda` first), and the throughput file `sweep --dry-run --throughput FILE` turns into GPU-hours.

    $ tas-bench bench gpu --out results/gpu-throughput.json             # on a CUDA machine: a few minutes
    $ tas-bench bench gpu --device cpu --batch-size 16 --steps 2 --proxy-epochs 1     # its CPU mode (CI)

Per network (ResNet-20/56/110 on 32x32 images, 10 classes) it times, after warm-up steps and as medians:
- a training step (forward, backward, SGD; bf16 autocast and channels-last on CUDA, as `tasbench.train`), eager
  and, on CUDA, compiled with `torch.compile` (a compile error is reported, and that row left out);
- a TAS search step (the registered `search-step` benchmark: a weight step and an architecture step of
  `--batch-size` images each), eager;
- the peak memory of one training step (the CUDA allocator's peak; on a CPU the resident set's).
Then it trains ResNet-20 on the proxy data with the default recipe (`tas-bench train`'s, 10 epochs) and checks its
top-1 against `--proxy-top1` (the CPU run in docs/training.md reached 88.60%; `passed` says whether it did).

The throughput file holds images/s per network and mode; the dry run uses the eager figures (runs train eager
unless `--compile` is given) and those of the measured net nearest in MACs for a net not measured.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from tasbench.atomic import write_json
from tasbench.bounds import MAX_BATCH, MAX_THREADS, float_flag, int_flag, path_flag
from tasbench.device import DEVICE_HELP, device_flag
from tasbench.flops import macs
from tasbench.microbench import Benchmark, benchmarks, peak_memory_mib, time_interleaved
from tasbench.presets import preset
from tasbench.resnet import seeded_resnet
from tasbench.train import autocast

NETS = ("resnet20", "resnet56", "resnet110")
FORMAT = "tas-bench-throughput/1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_flag, default="auto", help=DEVICE_HELP)
    p.add_argument("--batch-size", type=int_flag(1, MAX_BATCH), default=256, help="images per step (default: 256)")
    p.add_argument("--steps", type=int_flag(1, 10_000), default=10, help="timed steps per figure (default: 10)")
    p.add_argument("--warmup", type=int_flag(0, 10_000), default=3, help="untimed steps first (default: 3)")
    p.add_argument("--networks", default=",".join(NETS), help=f"comma-separated (default: {','.join(NETS)})")
    p.add_argument("--threads", type=int_flag(1, MAX_THREADS), default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--no-compile", action="store_true", help="eager only (default: also compiled, on CUDA)")
    p.add_argument(
        "--proxy-epochs", type=int_flag(0, 1000), default=10, help="ResNet-20 proxy training (0: skip; default: 10)"
    )
    p.add_argument(
        "--proxy-top1",
        type=float_flag(0, 100),
        default=85.0,
        help="top-1 the proxy training must reach, in %% (default: 85; 88.60 measured on a CPU)",
    )
    p.add_argument("--out", type=path_flag, help="write the throughput file here (for sweep --dry-run --throughput)")


def train_step(arch, batch: int, device: torch.device):
    """One training step of `arch` on a fixed random batch, as `tasbench.train` takes it."""
    model = seeded_resnet(arch, 0).to(device, memory_format=torch.channels_last).train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 32, 32, generator=g).to(device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, arch.num_classes, (batch,), generator=g).to(device)

    def step(forward) -> None:
        with autocast(device):
            loss = F.cross_entropy(forward(images), labels)
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()

    return model, step


def measure(network: str, args: argparse.Namespace) -> dict:
    device = args.device
    arch = preset(network, 10, "cifar")
    model, step = train_step(arch, args.batch_size, device)
    row = {"macs": macs(arch), **peak_memory_mib(lambda: step(model), device)}
    modes = {"eager": model}
    if device.type == "cuda" and not args.no_compile:
        modes["compiled"] = torch.compile(model)
    for mode, forward in modes.items():
        try:
            timing = time_interleaved({mode: lambda f=forward: step(f)}, args.steps, args.warmup, device)[mode]
        except Exception as e:  # a compile error: reported, eager still stands
            row[f"{mode}_error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e) else ''}"
            continue
        row[f"train_{mode}_images_per_s"] = args.batch_size / timing["seconds_per_step"]
    search = benchmarks()["search-step"].run(
        argparse.Namespace(
            network=network,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            threads=args.threads,
            k=2,
            shapes="auto",
            device=device,
            official=False,
        )
    )
    row["search_eager_images_per_s"] = search["images_per_second"]  # both halves' images
    row["search_shapes"] = search["shapes"]
    return row


def proxy_training(args: argparse.Namespace) -> dict:
    from tasbench.data import DataConfig, load_data
    from tasbench.presets import resnet20
    from tasbench.seeds import derive_seed
    from tasbench.train import TrainConfig, train

    cfg = TrainConfig(epochs=args.proxy_epochs, warmup_epochs=min(1, args.proxy_epochs))
    began = time.perf_counter()
    model = seeded_resnet(resnet20(), derive_seed(cfg.seed, "init"))
    result = train(model, load_data(DataConfig("proxy")), cfg, device=args.device, progress=False)
    return {
        "epochs": cfg.epochs,
        "top1": result["top1"],
        "required_top1": args.proxy_top1,
        "passed": result["top1"] >= args.proxy_top1,
        "seconds": time.perf_counter() - began,
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = args.device
    networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    for network in networks:
        preset(network, 10, "cifar")  # an unknown or ImageNet name fails before anything is timed
    out = {
        "format": FORMAT,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "device_type": device.type,
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "networks": {network: measure(network, args) for network in networks},
    }
    if args.proxy_epochs:
        out["proxy_resnet20"] = proxy_training(args)
    if args.out:
        write_json(args.out, out)
    print(table(out), file=sys.stderr)
    return {"benchmark": "gpu", **out}


def table(out: dict) -> str:
    """The figures for people: one row per network (images/s; memory in MiB), then the proxy training's line."""
    from tabulate import tabulate

    rows = []
    for network, row in out["networks"].items():
        memory = row.get("peak_cuda_allocated_mib", row.get("peak_rss_mib"))
        rows.append(
            [
                network,
                row.get("train_eager_images_per_s"),
                row.get("train_compiled_images_per_s", row.get("compiled_error", "-")),
                row["search_eager_images_per_s"],
                memory,
            ]
        )
    head = ["network", "train img/s (eager)", "train img/s (compiled)", "search img/s", "peak MiB"]
    text = f"{out['device']}, batch {out['batch_size']}, torch {out['torch']}\n"
    text += tabulate(rows, head, floatfmt=".0f")
    proxy = out.get("proxy_resnet20")
    if proxy:
        verdict = "passed" if proxy["passed"] else "FAILED"
        text += (
            f"\nproxy ResNet-20, {proxy['epochs']} epochs: top-1 {proxy['top1']:.2f}% (needs "
            f"{proxy['required_top1']:g}%: {verdict}) in {proxy['seconds']:.0f} s"
        )
    return text


BENCHMARK = Benchmark(
    name="gpu",
    add_arguments=add_arguments,
    run=run,
    summary="the GPU check: train/search images per second of ResNet-20/56/110, memory, a proxy training",
)

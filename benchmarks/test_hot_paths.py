"""pytest-benchmark suites for the hot paths: `nox -s bench` (= `pytest benchmarks/ --benchmark-only`).

These machines are noisy, so every benchmark also times a fixed reference workload (a chain of 256x256 fp32
matmuls) right before itself, in the same process and with the same thread count, and reports its timings as
multiples of the reference's median: pytest-benchmark's table, JSON and `--benchmark-compare` (against
benchmarks/baselines/<cpu model>.json, in `nox -s bench`) all see ratios. Seconds stay in `extra_info` and the
summary table.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from baselines.uniform import scale_widths
from tas.reference_forward import official_forward
from tas.search import SearchConfig, build_search_model, make_optimizers, search_step
from tas.search_space import search_space
from tasbench.data import crop_flip
from tasbench.distill import DistillConfig, DistillLoss
from tasbench.flops import count_macs, macs
from tasbench.presets import resnet20, resnet56
from tasbench.pruner import PruneRequest, get_pruner
from tasbench.resnet import build_resnet, seeded_resnet

THREADS = 2
BATCH = 64
NETS = {"resnet20": resnet20, "resnet56": resnet56}


def reference_seconds(repeats: int = 15) -> float:
    """Median seconds of the reference workload: 20 chained 256x256 matmuls (about 0.7 GFLOP)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 256, generator=g), torch.randn(256, 256, generator=g) / 16
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        x = a
        for _ in range(20):
            x = x @ b
        times.append(time.perf_counter() - began)
    return statistics.median(times)


@pytest.fixture
def bench(benchmark, request, bench_summary):
    """`benchmark.pedantic` with warm-up; its timings are then divided by the reference's median (see conftest)."""
    torch.set_num_threads(THREADS)

    def run(fn, rounds: int = 10, warmup: int = 2):
        reference = reference_seconds()
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup)
        stats = benchmark.stats.stats
        seconds = statistics.median(stats.data)
        stats.data[:] = [t / reference for t in stats.data]
        for cached in [name for name in vars(stats) if name != "data"]:  # statistics computed before the rescale
            delattr(stats, cached)
        benchmark.extra_info.update(
            threads=THREADS, reference_seconds=reference, median_seconds=seconds, ratio_to_reference=stats.median
        )
        bench_summary.append(
            {
                "name": request.node.name,
                "median_seconds": seconds,
                "reference_seconds": reference,
                "ratio": stats.median,
            }
        )

    return run


def batch(size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(size, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last)
    return images, torch.randint(0, 10, (size,), generator=g)


@pytest.mark.parametrize("formulation", ["ours", "official"])
@pytest.mark.parametrize("net", list(NETS))
def test_tas_search_step(bench, net, formulation):
    """One weight step + one architecture step, as `tas-bench bench search-step`; `official` computes the forward
    pass the released code's way (`tas.reference_forward`): the "before" of our speed work, timed in the same run."""
    arch, cfg = NETS[net](), SearchConfig(shapes="dynamic")
    model = build_search_model(search_space(arch), cfg, 0, torch.device("cpu"))
    w_opt, a_opt = make_optimizers(model, cfg)
    gumbel = torch.Generator().manual_seed(0)
    goal = (0.5 * macs(arch), 0.05 * macs(arch), cfg.flop_weight)
    data = batch()
    forward = None
    if formulation == "official":
        forward = lambda images, tau, g: official_forward(model, images, *model.sample(tau, g))  # noqa: E731
    bench(
        lambda: search_step(model, w_opt, a_opt, data, data, 5.0, gumbel, goal, forward=forward),
        rounds=10 if formulation == "ours" else 5,
    )


def sgd_step(model: torch.nn.Module, loss_fn):
    images, labels = batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def step() -> None:
        loss = loss_fn(model(images), labels, images)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


@pytest.mark.parametrize("width", [1.0, 0.7])
@pytest.mark.parametrize("net", list(NETS))
def test_train_step(bench, net, width):
    """A plain SGD step of the unpruned net (width 1.0) and of it uniformly scaled to 0.7 of its widths, the odd
    channel counts (11, 22, 45) that retraining a pruned net meets."""
    model = build_resnet(scale_widths(NETS[net](), width)).to(memory_format=torch.channels_last)
    bench(sgd_step(model, lambda logits, labels, images: F.cross_entropy(logits, labels)))


def test_distillation_step(bench):
    """A ResNet-20 student step with the KD loss of a ResNet-56 teacher (the teacher's forward included)."""
    teacher = build_resnet(resnet56()).to(memory_format=torch.channels_last)
    student = build_resnet(resnet20()).to(memory_format=torch.channels_last)
    bench(sgd_step(student, DistillLoss(teacher, DistillConfig())))


def test_flop_count_analytic(bench):
    bench(lambda: macs(resnet56()), rounds=50)


def test_flop_count_hooks(bench):
    model = build_resnet(resnet56())
    bench(lambda: count_macs(model, 32), rounds=10)


@pytest.mark.parametrize("method", ["l1", "fpgm"])
def test_filter_selection_resnet56(bench, method):
    """Score, select and slice ResNet-56 to half its FLOPs (FLOP matching included)."""
    pruner = get_pruner(method)
    model = seeded_resnet(resnet56(), 0)
    bench(lambda: pruner.prune(PruneRequest(resnet56(), model, 0.5), pruner.options()), rounds=5, warmup=1)


def test_batch_augmentation(bench):
    """Pad-4 random crop + flip of a 256-image uint8 batch."""
    images = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    bench(lambda: crop_flip(images, g), rounds=30)

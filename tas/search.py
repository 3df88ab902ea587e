"""The TAS search loop (paper Alg. 1; official `exps/algos/search-shape.py`): weights and architecture in turn.

The training split is halved (`search_data.py`: class-stratified and fixed by `split_seed`, as the release): one
half trains the weights, the other the architecture. Each step is one SGD step on the weights (cross-entropy on a
weight-half batch), then one Adam step on the width and depth logits (cross-entropy on an architecture-half batch +
lambda * FLOP loss, its FLOPs counted as `flop_count` says: the release's figures by default, see `flop_loss.py`).
tau is annealed once per epoch. An atomic checkpoint after every epoch holds everything a resumed search needs
(weights, logits, both optimizers, the Gumbel generator, the epoch, the log), and the data order is a pure function
of (seed, epoch), so a resumed search ends exactly where an uninterrupted one does.

    >>> result = run_search(resnet20(), load_data(DataConfig("proxy")), SearchConfig(epochs=10), ratio=0.5)
    >>> result.arch.xblocks, macs(result.arch) / macs(resnet20())   # inside the band [0.45, 0.50]
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from tas.channel_interp import ALIGN_MODES
from tas.flop_loss import FLOP_COUNTS, flop_loss
from tas.search_data import SPLITS, num_search_steps, search_batches, split_halves
from tas.search_model import SEARCHED, SearchResNet
from tas.search_space import WIDTH_RATIOS, SearchSpace, check_reachable, search_space
from tasbench.arch import Arch
from tasbench.atomic import save_torch
from tasbench.bounds import MAX_BATCH, MAX_EPOCHS, MAX_SEED, check_fields
from tasbench.checkpoint import resume_state
from tasbench.data import ImageData
from tasbench.errors import choice_error
from tasbench.flops import macs
from tasbench.seeds import derive_seed
from tasbench.train import lr_at

TAU_SCHEDULES = ("linear", "cosine")
SHAPES = ("auto", "dynamic", "static")
SEARCH_MODES = SEARCHED + ("random",)
SELECT = ("last", "in-band")  # random: no learning, a random net of the space at the FLOP target


@dataclass(frozen=True)
class SearchConfig:
    """A search recipe. Defaults follow the paper where it and the released code disagree (tau: linear 10 -> 0.1;
    the code's cosine 5 -> 0.1 is `tau_schedule=cosine tau_max=5`), and the code where the paper is silent (the FLOP
    count, the data split); the budget is the proxy's (official: 600 epochs, batch 256)."""

    epochs: int = 10
    batch_size: int = 64  # per half: each step sees one weight batch and one architecture batch
    lr: float = 0.1  # weights: SGD, cosine to 0 over the search
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    arch_lr: float = 1e-3  # logits: Adam, betas (0.5, 0.999)
    arch_beta1: float = 0.5
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    tau_schedule: str = "linear"
    k: int = 2  # widths sampled per conv; 0 = all candidates
    align: str = "cwi"  # "zero-pad" is the paper's no-CWI ablation
    search: str = "width+depth"  # "width" = TAS(W), "depth" = TAS(D), "random" = random search at the target
    flop_weight: float = 2.0  # lambda of paper Eq. 8
    flop_tolerance: float = 0.05  # of the unpruned FLOPs: the band is [ratio - tolerance, ratio]
    shapes: str = "auto"  # dynamic on CPU, static (no host sync) on GPU
    # Which argmax net to keep: the last epoch's (paper and code), or the last epoch-end one whose built net is
    # inside the FLOP band (falls back to the last): a short search oscillates around the band, a benchmark compares
    # at equal FLOPs.
    select: str = "last"
    # How the FLOP loss counts: "official" = the release's expected and current FLOPs, "exact" = the engine's count
    # (its exact expectation, and the built net's MACs); see `flop_loss.py`.
    flop_count: str = "official"
    # The weight/architecture halves: "official" = class-stratified, fixed by split_seed, architecture images drawn
    # with replacement, last partial batch kept; "random" = halves from the run's seed, partial batches dropped.
    split: str = "official"
    split_seed: int = 111  # the release's split seed; independent of the run's seed

    def __post_init__(self) -> None:
        for name, allowed in (
            ("tau_schedule", TAU_SCHEDULES),
            ("align", ALIGN_MODES),
            ("search", SEARCH_MODES),
            ("shapes", SHAPES),
            ("select", SELECT),
            ("flop_count", FLOP_COUNTS),
            ("split", SPLITS),
        ):
            if getattr(self, name) not in allowed:
                raise choice_error(name, getattr(self, name), allowed)
        check_fields(
            self,
            [
                ("epochs", 1 <= self.epochs <= MAX_EPOCHS, f"in [1, {MAX_EPOCHS}]"),
                ("batch_size", 1 <= self.batch_size <= MAX_BATCH, f"in [1, {MAX_BATCH}]"),
                ("lr", self.lr > 0, "> 0"),
                ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                ("weight_decay", self.weight_decay >= 0, ">= 0"),
                ("arch_lr", self.arch_lr > 0, "> 0"),
                ("arch_beta1", 0 <= self.arch_beta1 < 1, "in [0, 1) (Adam's first beta)"),
                ("arch_weight_decay", self.arch_weight_decay >= 0, ">= 0"),
                ("tau_max", self.tau_max > 0, "> 0"),
                ("tau_min", 0 < self.tau_min <= self.tau_max, f"in (0, tau_max={self.tau_max}]"),
                ("k", 0 <= self.k <= len(WIDTH_RATIOS), f"in [0, {len(WIDTH_RATIOS)}] (0 = all candidates)"),
                ("flop_weight", self.flop_weight >= 0, ">= 0"),
                ("flop_tolerance", 0 < self.flop_tolerance < 1, "in (0, 1)"),
                ("split_seed", 0 <= self.split_seed <= MAX_SEED, f"in [0, {MAX_SEED}]"),
            ],
        )

    @property
    def needs_data(self) -> bool:  # `tasbench.pruner.needs_data`: the random search draws a shape, it trains nothing
        return self.search != "random"


def tau_at(epoch: int, cfg: SearchConfig) -> float:
    """tau of `epoch` (0-based): the paper's linear decay from tau_max to tau_min, or the released code's cosine."""
    if cfg.tau_schedule == "linear":
        return cfg.tau_max - (cfg.tau_max - cfg.tau_min) * epoch / max(1, cfg.epochs - 1)
    return cfg.tau_min + (cfg.tau_max - cfg.tau_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2


@dataclass
class SearchResult:
    arch: Arch  # the derived (pruned) architecture
    history: list[dict]  # one row per epoch
    info: dict  # JSON-ready: target, final ratio, probabilities, config


def build_search_model(space: SearchSpace, cfg: SearchConfig, seed: int, device: torch.device) -> SearchResNet:
    """The search network of `cfg`, initialised from its own seed (the global RNG is left alone)."""
    static = cfg.shapes == "static" or (cfg.shapes == "auto" and device.type == "cuda")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "tas-search-init"))
        model = SearchResNet(space, cfg.k, cfg.align, cfg.search, static_shapes=static, flop_count=cfg.flop_count)
    return model.to(device, memory_format=torch.channels_last)


def run_search(
    arch: Arch,
    data: ImageData,
    cfg: SearchConfig,
    ratio: float,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    checkpoint_path: str | Path | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search `arch`'s space for a net of `ratio` of its FLOPs on `data`; resumes from `checkpoint_path` if present."""
    device = torch.device("cpu") if device is None else device
    space = search_space(arch)
    check_reachable(space, ratio, cfg.search)
    full = macs(arch)
    target, tolerance = ratio * full, cfg.flop_tolerance * full
    model = build_search_model(space, cfg, seed, device)
    halves = split_halves(data, cfg.split, cfg.split_seed, seed)
    weight_half, arch_half = (half.to(device) for half in halves)
    w_opt, a_opt = make_optimizers(model, cfg)
    gumbel = torch.Generator(device=device).manual_seed(derive_seed(seed, "tas-gumbel"))
    run_config = {"search": dataclasses.asdict(cfg), "arch": arch.to_dict(), "ratio": ratio, "seed": seed}
    history: list[dict] = []
    start = 0
    keys = ("model", "w_opt", "a_opt", "gumbel", "epoch", "history")
    state = resume_state(checkpoint_path, run_config, keys, "search checkpoint")
    if state is not None:
        model.load_state_dict(state["model"])
        w_opt.load_state_dict(state["w_opt"])
        a_opt.load_state_dict(state["a_opt"])
        gumbel.set_state(state["gumbel"])
        start, history = state["epoch"], state["history"]

    steps = num_search_steps(weight_half, arch_half, cfg.batch_size, cfg.split)
    total = cfg.epochs * steps
    bar = tqdm(
        total=total,
        initial=start * steps,
        unit="step",
        desc=f"TAS search {ratio:g}",
        disable=not progress,
        dynamic_ncols=True,
    )
    for epoch in range(start, cfg.epochs):
        model.train()
        tau = tau_at(epoch, cfg)
        began = time.perf_counter()
        sums = torch.zeros(5, device=device)  # weight loss, weight correct, arch loss, arch correct, images
        batches = search_batches(weight_half, arch_half, cfg.batch_size, cfg.split, seed, epoch, device)
        for step, ((w_images, w_labels), (a_images, a_labels)) in enumerate(batches):
            for group in w_opt.param_groups:
                group["lr"] = lr_at(epoch * steps + step, total, 0, cfg.lr)
            sums += search_step(
                model,
                w_opt,
                a_opt,
                (w_images, w_labels),
                (a_images, a_labels),
                tau,
                gumbel,
                (target, tolerance, cfg.flop_weight),
            )
            bar.update(1)
            if progress and step % 20 == 0:
                bar.set_postfix(_postfix(sums, model.argmax_flops(), full, ratio))
        row = _epoch_row(epoch, tau, sums, model, full, time.perf_counter() - began)
        history.append(row)
        bar.set_postfix(_postfix(sums, model.argmax_flops(), full, ratio))
        if checkpoint_path is not None:
            save_torch(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "w_opt": w_opt.state_dict(),
                    "a_opt": a_opt.state_dict(),
                    "gumbel": gumbel.get_state(),
                    "epoch": epoch + 1,
                    "history": history,
                    "config": run_config,
                },
            )
    bar.close()
    derived, selected = model.derive(), len(history)
    if cfg.select == "in-band":
        inside = [r["epoch"] for r in history if ratio - cfg.flop_tolerance <= r["flop_ratio"] <= ratio]
        if inside and inside[-1] != len(history):
            selected = inside[-1]
            derived = arch.replace(**history[selected - 1]["arch"])
    with torch.no_grad():
        width_probs, depth_probs = model.probabilities()
    final = macs(derived) / full
    info = {
        "target_ratio": ratio,
        "flop_ratio": final,  # the built net's exact MACs / the unpruned net's
        "in_band": ratio - cfg.flop_tolerance <= final <= ratio,
        "selected_epoch": selected,
        "flop_count": cfg.flop_count,  # how the two figures below (and the FLOP loss) counted
        "current_flop_ratio": history[selected - 1]["current_flop_ratio"],
        "expected_flop_ratio": model.expected_flops().item() / full,
        "width_probs": [[round(p, 6) for p in row[: len(c)]] for row, c in zip(width_probs.tolist(), space.widths)],
        "depth_probs": [[round(p, 6) for p in row[: len(d)]] for row, d in zip(depth_probs.tolist(), space.depths)],
        "search_seconds": sum(r["seconds"] for r in history),
    }
    return SearchResult(derived, history, info)


def search_step(
    model: SearchResNet,
    w_opt: torch.optim.Optimizer,
    a_opt: torch.optim.Optimizer,
    w_batch: tuple[torch.Tensor, torch.Tensor],
    a_batch: tuple[torch.Tensor, torch.Tensor],
    tau: float,
    gumbel: torch.Generator,
    flop_goal: tuple[float, float, float],
    forward: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One weight step then one architecture step; returns [w loss sum, w correct, arch CE sum, arch correct, n].

    `flop_goal` is (target MACs, tolerance MACs, lambda). Nothing is read back from the device. `forward` replaces
    `model(images, tau, generator)` (the benchmark times the official formulation through it).
    """
    forward = model if forward is None else forward
    target, tolerance, flop_weight = flop_goal
    w_params, a_params = model.weight_parameters(), model.arch_parameters()
    # The logits get no gradient in the weight step, nor the weights in the architecture step: each optimizer only
    # ever sees its own parameters' gradients (the official code zeroes the others), so skipping them changes nothing.
    (w_images, w_labels), (a_images, a_labels) = w_batch, a_batch
    _requires_grad(a_params, False)
    w_logits = forward(w_images, tau, gumbel)
    w_loss = F.cross_entropy(w_logits.float(), w_labels)
    w_opt.zero_grad(set_to_none=True)
    w_loss.backward()
    w_opt.step()
    _requires_grad(a_params, True)
    _requires_grad(w_params, False)
    a_logits = forward(a_images, tau, gumbel)
    a_ce = F.cross_entropy(a_logits.float(), a_labels)
    a_loss = a_ce + flop_weight * flop_loss(model.expected_flops(), model.argmax_flops(), target, tolerance)
    a_opt.zero_grad(set_to_none=True)
    a_loss.backward()
    a_opt.step()
    _requires_grad(w_params, True)
    n = len(w_labels)
    return torch.stack(
        [
            w_loss.detach() * n,
            (w_logits.argmax(1) == w_labels).sum(),
            a_ce.detach() * n,
            (a_logits.argmax(1) == a_labels).sum(),
            torch.tensor(n, device=w_labels.device),
        ]
    )


def make_optimizers(model: SearchResNet, cfg: SearchConfig) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """SGD (Nesterov) for the weights and Adam (betas (0.5, 0.999)) for the logits, as the official search."""
    w_opt = torch.optim.SGD(
        model.weight_parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    a_opt = torch.optim.Adam(
        model.arch_parameters(), lr=cfg.arch_lr, betas=(cfg.arch_beta1, 0.999), weight_decay=cfg.arch_weight_decay
    )
    return w_opt, a_opt


def _requires_grad(params: list[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _postfix(sums: torch.Tensor, current: torch.Tensor, full: int, ratio: float) -> dict:
    s = sums.tolist()
    seen = max(s[4], 1)
    return {
        "loss": f"{s[0] / seen:.3f}",
        "acc": f"{100 * s[1] / seen:.1f}",
        "arch_acc": f"{100 * s[3] / seen:.1f}",
        "flops": f"{float(current) / full:.3f}/{ratio:g}",
    }


def _epoch_row(epoch: int, tau: float, sums: torch.Tensor, model: SearchResNet, full: int, seconds: float) -> dict:
    s = sums.tolist()
    seen = max(s[4], 1)
    derived = model.derive()
    return {
        "epoch": epoch + 1,
        "tau": tau,
        "weight_loss": s[0] / seen,
        "weight_top1": 100 * s[1] / seen,
        "arch_loss": s[2] / seen,
        "arch_top1": 100 * s[3] / seen,
        "expected_flop_ratio": model.expected_flops().item() / full,  # both counted the `flop_count` way
        "current_flop_ratio": model.argmax_flops().item() / full,
        "flop_ratio": macs(derived) / full,  # the built net's exact count
        "arch": {"xchannels": list(derived.xchannels), "xblocks": list(derived.xblocks)},
        "seconds": seconds,
    }

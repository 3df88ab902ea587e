"""Soft filter pruning, shared by SFP and FPGM's soft mode: train the unpruned net and, before the first step and
after every epoch, zero the conv filters a criterion ranks lowest; at the end the slim net is built from the last
selection (`slice_resnet`).

The two references differ in one line besides the criterion (BASELINES.md): FPGM's `pruning_cifar10.py` also zeroes
the masked filters' gradients after every backward (`do_grad_mask`, "to remove the effect of Soft Filter Pruning"),
so they stay at zero until the next selection; SFP lets them train and win their place back. `freeze_masked`
(the `mask_gradients` hooks) is that line. (Weight decay adds nothing to a zero filter, but SGD's momentum buffer
can still move one that was zeroed after it had momentum, as in the reference, whose mask also acts on gradients
only.)

The selection lives in the net as a buffer of each masked conv (`soft_keep`, 1 = kept), so the epoch checkpoint
carries it: a run killed mid-training resumes with the gradient mask and selection it had, and a run resumed
after its last epoch reads its final selection back exactly.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from baselines.channel_groups import Keep, channel_groups, output_convs, slice_resnet, zero_channels
from baselines.flop_match import FilterScore, check_matching, group_scores, keep_best, kept_by_layer, match_counts
from tasbench.arch import Arch
from tasbench.data import ImageData
from tasbench.errors import ConfigError, choice_error
from tasbench.pruner import PruneBudget, Pruned, PruneRequest
from tasbench.train import TrainConfig, evaluate, train

BUFFER = "soft_keep"
MODES = ("hard", "soft")


@dataclass(frozen=True)
class SoftOptions:
    """The options of a filter pruner with a soft mode (FPGM, SFP); `METHOD` names it in errors."""

    METHOD: ClassVar[str] = ""
    mode: str = "soft"  # "hard": prune once on the given weights; "soft": train with per-epoch zeroing
    scope: str = "all"  # "all": every conv, residual chains as coupled groups; "internal": block-internal convs only
    tolerance: float = 0.01  # accepted relative distance to the target MACs
    epochs: int = 10  # soft mode: training epochs (the references: 200 from scratch on CIFAR)
    lr: float = 0.1  # soft mode: peak learning rate
    batch_size: int = 128  # soft mode

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise choice_error(f"{self.METHOD} mode", self.mode, MODES)
        check_matching(self.scope, self.tolerance)
        TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)  # names a bad value

    @property
    def needs_data(self) -> bool:  # options may ask for data (`tasbench.pruner.needs_data`): soft mode trains
        return self.mode == "soft"


def record(model: nn.Module, arch: Arch, keep: Keep) -> None:
    """Write `keep` into each masked conv's `soft_keep` buffer (registered on first use)."""
    for conv, slot in output_convs(model, arch).values():
        mask = torch.zeros(conv.out_channels, device=conv.weight.device)
        mask[keep.get(slot, list(range(conv.out_channels)))] = 1
        if hasattr(conv, BUFFER):
            getattr(conv, BUFFER).copy_(mask)
        else:
            conv.register_buffer(BUFFER, mask)


def recorded(model: nn.Module, arch: Arch) -> Keep:
    """The selection the buffers hold (the last one made)."""
    return {
        slot: getattr(conv, BUFFER).nonzero().flatten().tolist() for conv, slot in output_convs(model, arch).values()
    }


def mask_gradients(model: nn.Module, arch: Arch) -> list:
    """Multiply each masked conv's weight gradient by its `soft_keep` buffer on every backward; the hook handles."""
    return [
        conv.weight.register_hook(lambda grad, conv=conv: grad * getattr(conv, BUFFER).view(-1, 1, 1, 1))
        for conv, _ in output_convs(model, arch).values()
    ]


def soft_train(
    model: nn.Module,
    arch: Arch,
    counts: list[int],
    data: ImageData,
    cfg: TrainConfig,
    *,
    score: FilterScore,
    freeze_masked: bool,
    device: torch.device,
    checkpoint_path: str | Path | None = None,
    progress: bool = False,
) -> tuple[Keep, dict]:
    """Train `model` in place with soft pruning; return the final selection and the training metrics.

    Each selection keeps, per coupled group, its `counts` highest-`score` channels on the current weights and zeroes
    the others' conv filters (BN untouched, as both references' `do_mask`). `freeze_masked`: FPGM's gradient mask.
    The checkpoint's config names the criterion, the counts and the mask, so another soft setup is not resumed.
    """
    groups = channel_groups(arch)

    def select_and_zero(net: nn.Module, epoch: int) -> None:
        keep = keep_best(groups, group_scores(net, arch, groups, score), counts)
        zero_channels(net, arch, keep, bn=False)
        record(net, arch, keep)

    select_and_zero(model, -1)  # before the first step, as the references; a resumed run's checkpoint replaces it
    hooks = mask_gradients(model, arch) if freeze_masked else []
    run_config = {
        **asdict(cfg),
        "soft_pruning": {"score": score.__name__, "counts": counts, "freeze_masked": freeze_masked},
    }
    try:
        metrics = train(
            model,
            data,
            cfg,
            device=device,
            checkpoint_path=checkpoint_path,
            run_config=run_config,
            progress=progress,
            post_epoch=select_and_zero,
        )
    finally:
        for hook in hooks:
            hook.remove()
    keep = recorded(model, arch)
    for conv, _ in output_convs(model, arch).values():
        delattr(conv, BUFFER)  # the net is the plain ResNet again: its state dict has the builder's keys
    return keep, metrics


def soft_budget(options: SoftOptions, train_images: int, test_images: int) -> PruneBudget | None:
    """Soft mode trains the unpruned net `epochs` times over the training set (`train()` evaluates every epoch);
    hard mode trains nothing."""
    if options.mode != "soft":
        return None
    steps = max(1, train_images // options.batch_size)
    return PruneBudget(
        f"soft {options.epochs} ep x {steps} steps (batch {options.batch_size})",
        options.epochs * steps * options.batch_size,
        (options.epochs + 1) * test_images,
    )


def prune_filters(request: PruneRequest, options: SoftOptions, score: FilterScore, *, freeze_masked: bool) -> Pruned:
    """Prune `request.model` to `request.ratio` of the FLOPs by `score`: once on its weights (hard mode) or while
    training it (soft mode; `freeze_masked`: FPGM's gradient mask). The counts are FLOP-matched as for L1."""
    arch = request.arch
    groups = channel_groups(arch)
    counts, info = match_counts(arch, groups, request.ratio, options.tolerance, options.scope, options.METHOD)
    model = request.model
    if options.mode == "soft":
        if request.data is None:
            raise ConfigError(
                f"{options.METHOD} mode 'soft' trains the net and needs data; give a dataset (or use mode=hard)"
            )
        model = copy.deepcopy(model)  # soft mode trains; the caller's net stays as it was
        cfg = TrainConfig(epochs=options.epochs, lr=options.lr, batch_size=options.batch_size, seed=request.seed)
        keep, metrics = soft_train(
            model,
            arch,
            counts,
            request.data,
            cfg,
            score=score,
            freeze_masked=freeze_masked,
            device=request.device,
            checkpoint_path=Path(request.workdir) / "soft-pruning.pt" if request.workdir else None,
            progress=request.progress,
        )
        info["soft_training"] = {k: v for k, v in metrics.items() if k != "history"}
    else:
        keep = keep_best(groups, group_scores(model, arch, groups, score), counts)
    new_arch, pruned = slice_resnet(model, arch, keep)
    if options.mode == "soft":
        # The soft-masked net still adds its zeroed channels' BN shifts; the sliced one drops them (as the
        # references' small models do), so its accuracy is measured too.
        info["soft_training"]["sliced_top1"] = evaluate(pruned, request.data, request.device)["top1"]
    return Pruned(
        new_arch, pruned, {**info, "mode": options.mode, "kept": kept_by_layer(arch, keep), "inherits_weights": True}
    )

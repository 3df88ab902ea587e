"""FPGM: filter pruning via geometric median (He et al., CVPR 2019).

In each conv, the filters with the smallest summed Euclidean distance to all other filters of that conv (the raw,
flattened weights) lie nearest the geometric median and are the most replaceable; they are removed (BASELINES.md;
`Mask.get_filter_similar` in the authors' `pruning_cifar10.py`, "FPGM-only": distance alone, no norm
pre-selection). Residual chains are coupled groups here (`channel_groups.py`), ranked by the sum of their convs'
distance sums. Two modes:

- hard: prune the given (trained) net once; fine-tuning is a shared recipe (`tasbench/recipes.py`).
- soft (the reference): train with the engine's `train()`, zeroing the selected filters after every epoch (and once
  before the first); zeroed filters keep receiving gradients and may win back their place at the next selection.
  At the end the smaller net is built from the final selection.

The counts are FLOP-matched exactly as for L1 (`flop_match.match_counts`; `scope="all"` by default, since the
reference prunes every conv). The reference's own setting, 40% of the filters of every conv, is `rate_counts`;
`reference_macs` is its analytic FLOP accounting, to set beside the physically counted MACs. ResNet-56, zero-pad::

    >>> arch = resnet56(shortcut="zero-pad")
    >>> groups = channel_groups(arch)
    >>> macs(arch), reference_macs(arch, 0.4), macs(pruned_arch(arch, keep_counts(groups, rate_counts(groups, 0.4)))
    (125485706, 60180392, 48718490)   # -52.0% by the reference's accounting (He et al. state -52.6%), -61.2% counted

The counted net is smaller because its residual chains lose 40% too (every conv keeps 10/20/39 of 16/32/64; the
nested zero-pad chains keep 10/20/40), where the accounting leaves every block's input full.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from baselines.channel_groups import ChannelGroup, Keep, channel_groups, slice_resnet, zero_channels
from baselines.flop_match import check_matching, group_scores, keep_best, kept_by_layer, match_counts, prunable
from tasbench.arch import Arch, block_specs
from tasbench.data import ImageData
from tasbench.errors import ConfigError, choice_error
from tasbench.flop_target import relative_band
from tasbench.flops import layer_macs
from tasbench.pruner import PruneBudget, Pruned, Pruner, PruneRequest
from tasbench.train import TrainConfig, evaluate, train

MODES = ("hard", "soft")


@dataclass(frozen=True)
class FpgmOptions:
    mode: str = "hard"  # "hard": prune once; "soft": train with per-epoch zeroing, as the reference
    scope: str = "all"  # "all": every conv, residual chains as coupled groups; "internal": block-internal convs only
    tolerance: float = 0.01  # accepted relative distance to the target MACs
    epochs: int = 10  # soft mode: training epochs (the reference: 200 from scratch on CIFAR)
    lr: float = 0.1  # soft mode: peak learning rate
    batch_size: int = 128  # soft mode

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise choice_error("FPGM mode", self.mode, MODES)
        check_matching(self.scope, self.tolerance)
        TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)  # names a bad value

    @property
    def needs_data(self) -> bool:  # options may ask for data (`tasbench.pruner.needs_data`): soft mode trains
        return self.mode == "soft"


def distance_sums(weight: torch.Tensor) -> torch.Tensor:
    """Each filter's summed Euclidean distance to every filter of the same conv, from the Gram matrix.

    ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b; the reference computes the same with `scipy.spatial.distance.cdist`.
    """
    flat = weight.flatten(1).double()
    sq = (flat * flat).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * flat @ flat.T).clamp_min(0)
    d2.fill_diagonal_(0)
    return d2.sqrt().sum(1)


def rate_counts(groups: list[ChannelGroup], rate: float, scope: str = "all") -> list[int]:
    """The reference's fixed rate: every prunable group loses `int(n * rate)` of its `n` channels."""
    return [len(g.channels) - int(len(g.channels) * rate) if prunable(g, scope) else len(g.channels) for g in groups]


def reference_macs(arch: Arch, rate: float) -> int:
    """He et al.'s analytic FLOPs for pruning `rate` of every conv (BASELINES.md): the first conv of a block keeps its
    full input and loses `rate` of its outputs, every later conv of the block loses `rate` of both; the stem,
    shortcuts and classifier are left as they are. Rounded down to an integer."""
    total = 0.0
    per_layer = layer_macs(arch)
    blocks = {f"stages.{s.stage}.{s.index}": len(s.widths) for s in block_specs(arch)}
    for name, n in per_layer.items():
        block, _, conv = name.rpartition(".convs.")
        if block in blocks:
            total += n * (1 - rate) ** (1 if conv == "0" else 2)
        else:
            total += n
    return int(total)


def select(model: nn.Module, arch: Arch, groups: list[ChannelGroup], counts: list[int]) -> Keep:
    """The FPGM choice on `model`'s current weights: each group keeps its `counts` farthest-from-median channels."""
    return keep_best(groups, group_scores(model, arch, groups, distance_sums), counts)


def soft_train(
    model: nn.Module,
    arch: Arch,
    counts: list[int],
    data: ImageData,
    cfg: TrainConfig,
    *,
    device: torch.device,
    checkpoint_path: str | Path | None = None,
    progress: bool = False,
) -> tuple[Keep, dict]:
    """Train `model` in place with FPGM soft pruning and return the final selection and the training metrics.

    The selection is recomputed on the current weights and its losers' conv filters zeroed (BN untouched, as the
    reference's `do_mask`) before training and after every epoch, inside `train()` before the epoch's checkpoint.
    The final selection is the last epoch's; a run resumed after its last epoch reads it back from the zeros.

    Observed (tests/test_fpgm.py): filters zeroed before the first step never come back. Their BN shift starts at 0,
    so the channel sits at ReLU's kink and gets no gradient; only filters zeroed later, with momentum or a nonzero
    shift behind them, can recover. The sliced net then computes exactly what the soft-masked net computes.
    """
    groups = channel_groups(arch)
    last: dict[int, Keep] = {}

    def zero_losers(net: nn.Module, epoch: int) -> None:
        keep = select(net, arch, groups, counts)
        zero_channels(net, arch, keep, bn=False)
        last[epoch] = keep

    zero_losers(model, -1)
    metrics = train(
        model, data, cfg, device=device, checkpoint_path=checkpoint_path, progress=progress, post_epoch=zero_losers
    )
    final = last.get(cfg.epochs - 1)
    return (final if final is not None else zeroed_selection(model, arch, groups, counts)), metrics


def zeroed_selection(model: nn.Module, arch: Arch, groups: list[ChannelGroup], counts: list[int]) -> Keep:
    """The selection a soft run ended with, read from its weights: channels with nonzero filters first (in more of
    the group's convs first), then by FPGM score. Equals the last selection unless it kept a zeroed filter."""
    distance = group_scores(model, arch, groups, distance_sums)
    nonzero = group_scores(model, arch, groups, lambda w: (w.flatten(1).abs().sum(1) > 0).double())
    return keep_best(groups, [n * (1 + d.max()) + d for n, d in zip(nonzero, distance)], counts)


def prune_fpgm(request: PruneRequest, options: FpgmOptions) -> Pruned:
    """Prune `request.model` to `request.ratio` of the FLOPs by FPGM, once (hard) or while training (soft)."""
    arch = request.arch
    groups = channel_groups(arch)
    counts, info = match_counts(arch, groups, request.ratio, options.tolerance, options.scope, "FPGM")
    model = request.model
    if options.mode == "soft":
        if request.data is None:
            raise ConfigError("FPGM mode 'soft' trains the net and needs data; give a dataset (or use mode=hard)")
        model = copy.deepcopy(model)  # soft mode trains; the caller's net stays as it was
        cfg = TrainConfig(epochs=options.epochs, lr=options.lr, batch_size=options.batch_size, seed=request.seed)
        keep, metrics = soft_train(model, arch, counts, request.data, cfg, device=request.device)
        info["soft_training"] = {k: v for k, v in metrics.items() if k != "history"}
    else:
        keep = select(model, arch, groups, counts)
    new_arch, pruned = slice_resnet(model, arch, keep)
    if options.mode == "soft":
        # The soft-masked net still adds its zeroed channels' BN shifts; the sliced one drops them (as the
        # reference's small model does), so its accuracy is measured too.
        info["soft_training"]["sliced_top1"] = evaluate(pruned, request.data, request.device)["top1"]
    return Pruned(
        new_arch, pruned, {**info, "mode": options.mode, "kept": kept_by_layer(arch, keep), "inherits_weights": True}
    )


def check_fpgm(arch: Arch, options: FpgmOptions, ratio: float) -> None:
    """The FLOP matching reaches `ratio` (counts only, no weights)."""
    match_counts(arch, channel_groups(arch), ratio, options.tolerance, options.scope, "FPGM")


def fpgm_budget(options: FpgmOptions, train_images: int, test_images: int) -> PruneBudget | None:
    """Soft mode trains the unpruned net `epochs` times over the training set (`train()` evaluates every epoch)."""
    if options.mode != "soft":
        return None
    steps = max(1, train_images // options.batch_size)
    return PruneBudget(
        f"soft {options.epochs} ep x {steps} steps (batch {options.batch_size})",
        options.epochs * steps * options.batch_size,
        (options.epochs + 1) * test_images,
    )


PRUNER = Pruner(
    name="fpgm",
    prune=prune_fpgm,
    options=FpgmOptions,
    needs_data=False,  # hard mode; soft mode asks through FpgmOptions.needs_data
    reads_weights=True,  # filters are scored by the unpruned net's trained weights
    summary="filters nearest the geometric median of their layer removed (He et al. 2019), FLOP-matched",
    check=check_fpgm,
    budget=fpgm_budget,
    band=lambda options, ratio: relative_band(ratio, options.tolerance),
)

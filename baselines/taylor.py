"""Taylor: first-order Taylor importance of filters (Molchanov et al., CVPR 2019, "Importance Estimation for Neural
Network Pruning"), the TAS paper's ImageNet comparison.

A filter's importance is the squared first-order estimate of the loss change when it is removed: on each
minibatch, (sum over the filter's weights of w * dL/dw)^2, averaged over `batches` minibatches of the training set
(their Eq. 8, "Taylor FO on weights"). A residual chain sums its convs' importances, as every baseline here ranks a
coupled group (`flop_match.group_scores`), and the counts are FLOP-matched, so Taylor sits at the same FLOP target
as every other method. The gradients are taken in eval mode: BN normalises with its running statistics and does not
move them (the pruned net inherits them), so the scores are a pure function of the weights, the data and the seed.

Molchanov et al. prune iteratively (a few filters, fine-tune, repeat); here the net is pruned once to the target
and the shared recipe retrains it, as for L1 and FPGM (the iterative loop is not built). Torch-Pruning's own Taylor
criterion (|w * dw| summed over a group's layers) is `--method tp --opt importance=taylor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.channel_groups import channel_groups, output_convs, slice_resnet
from baselines.flop_match import check_counts, check_matching, keep_best, kept_by_layer, match_counts, summed_by_group
from tasbench.arch import Arch
from tasbench.bounds import MAX_BATCH, check_fields, int_in
from tasbench.data import ImageData, train_batches
from tasbench.errors import ConfigError
from tasbench.flop_target import relative_band
from tasbench.pruner import PruneBudget, Pruned, Pruner, PruneRequest
from tasbench.seeds import derive_seed


@dataclass(frozen=True)
class TaylorOptions:
    METHOD: ClassVar[str] = "Taylor"  # names the method in FLOP-matching errors (`flop_match.check_counts`)
    scope: str = "all"  # "all": every conv, residual chains as coupled groups; "internal": block-internal convs only
    tolerance: float = 0.01  # accepted relative distance to the target MACs
    batches: int = 32  # training minibatches whose gradients score the filters
    batch_size: int = 64

    def __post_init__(self) -> None:
        check_matching(self.scope, self.tolerance)
        check_fields(
            self,
            [
                ("batches", int_in(self.batches, 1, 100_000), "in [1, 100000]"),
                ("batch_size", int_in(self.batch_size, 1, MAX_BATCH), f"in [1, {MAX_BATCH}]"),
            ],
        )


def taylor_scores(
    model: nn.Module, arch: Arch, data: ImageData, options: TaylorOptions, seed: int
) -> tuple[dict[str, torch.Tensor], int]:
    """Each prunable conv's per-filter importance, the mean over minibatches of (sum_filter w * dL/dw)^2, by module
    name, and the number of minibatches scored (`options.batches`, or all of a smaller training set's)."""
    device = next(model.parameters()).device
    convs = {name: conv for name, (conv, _) in output_convs(model, arch).items()}
    totals = {name: torch.zeros(m.out_channels, dtype=torch.float64) for name, m in convs.items()}
    was_training = model.training
    model.eval()
    seen = 0
    batches = train_batches(data, options.batch_size, derive_seed(seed, "taylor-batches"), 0, device)
    for images, labels in batches:
        if seen == options.batches:
            break
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        for name, conv in convs.items():
            first_order = (conv.weight * conv.weight.grad).flatten(1).sum(1)
            totals[name] += first_order.detach().double().cpu().square()
        seen += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: total / seen for name, total in totals.items()}, seen


def prune_taylor(request: PruneRequest, options: TaylorOptions) -> Pruned:
    """Prune `request.model` to `request.ratio` of the FLOPs by first-order Taylor importance on the training data."""
    if request.data is None:
        raise ConfigError("Taylor scores filters by loss gradients on the training data; give a dataset")
    arch = request.arch
    groups = channel_groups(arch)
    counts, info = match_counts(arch, groups, request.ratio, options.tolerance, options.scope, options.METHOD)
    model = request.model.to(request.device)
    scores, seen = taylor_scores(model, arch, request.data.to(request.device), options, request.seed)
    keep = keep_best(groups, summed_by_group(arch, groups, scores.__getitem__), counts)
    new_arch, pruned = slice_resnet(model, arch, keep)
    info = {**info, "scored_batches": seen, "kept": kept_by_layer(arch, keep), "inherits_weights": True}
    return Pruned(new_arch, pruned, info)


def taylor_budget(options: TaylorOptions, train_images: int, test_images: int) -> PruneBudget:
    """`batches` forward and backward passes of the unpruned net."""
    images = options.batches * options.batch_size
    return PruneBudget(f"taylor scores on {options.batches} batches of {options.batch_size}", images)


PRUNER = Pruner(
    name="taylor",
    prune=prune_taylor,
    options=TaylorOptions,
    needs_data=True,
    reads_weights=True,  # the unpruned net's trained weights and their loss gradients
    summary="filters with the smallest first-order Taylor importance (Molchanov et al. 2019) removed, FLOP-matched",
    check=check_counts,
    budget=taylor_budget,
    band=lambda options, ratio: relative_band(ratio, options.tolerance),
)

"""FPGM: filter pruning via geometric median (He et al., CVPR 2019).

In each conv, the filters with the smallest summed Euclidean distance to all other filters of that conv (the raw,
flattened weights) lie nearest the geometric median and are the most replaceable; they are removed (BASELINES.md;
`Mask.get_filter_similar` in the authors' `pruning_cifar10.py`, "FPGM-only": distance alone, no norm
pre-selection). Residual chains are coupled groups here (`channel_groups.py`), ranked by the sum of their convs'
distance sums. Two modes:

- hard: prune the given (trained) net once; fine-tuning is a shared recipe (`tasbench/recipes.py`).
- soft (the reference): train with the engine's `train()`, zeroing the selected filters after every epoch (and once
  before the first) and, as the reference's `do_grad_mask`, their gradients after every backward, so they stay
  zeroed until the next selection (`soft_pruning.py`; SFP is the same loop without the gradient mask). At the end
  the smaller net is built from the final selection. A killed run resumes from its last epoch (`soft-pruning.pt` in
  the run directory).

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

from dataclasses import dataclass
from typing import ClassVar

import torch

from baselines.channel_groups import ChannelGroup
from baselines.flop_match import check_counts, prunable
from baselines.soft_pruning import SoftOptions, prune_filters, soft_budget
from tasbench.arch import Arch, block_specs
from tasbench.flop_target import relative_band
from tasbench.flops import layer_macs
from tasbench.pruner import Pruned, Pruner, PruneRequest


@dataclass(frozen=True)
class FpgmOptions(SoftOptions):
    """`soft_pruning.SoftOptions` (mode, scope, tolerance, epochs, lr, batch_size), hard mode by default."""

    METHOD: ClassVar[str] = "FPGM"
    mode: str = "hard"  # "hard": prune once; "soft": train with per-epoch zeroing and gradient masks, as the reference


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


def prune_fpgm(request: PruneRequest, options: FpgmOptions) -> Pruned:
    """Prune `request.model` to `request.ratio` of the FLOPs by FPGM, once (hard) or while training (soft, with the
    reference's gradient mask)."""
    return prune_filters(request, options, distance_sums, freeze_masked=True)


PRUNER = Pruner(
    name="fpgm",
    prune=prune_fpgm,
    options=FpgmOptions,
    needs_data=False,  # hard mode; soft mode asks through FpgmOptions.needs_data
    reads_weights=True,  # filters are scored by the unpruned net's trained weights
    summary="filters nearest the geometric median of their layer removed (He et al. 2019), FLOP-matched",
    check=check_counts,
    budget=soft_budget,
    band=lambda options, ratio: relative_band(ratio, options.tolerance),
)

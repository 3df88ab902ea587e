"""SFP: soft filter pruning (He et al., IJCAI 2018), a row of every CIFAR and ImageNet table of the TAS paper.

Filters are ranked by their L2 norm; the lowest are zeroed before the first step and after every training epoch,
and, unlike FPGM's reference, the zeroed filters keep receiving gradients, so they may grow back and win their
place at the next selection (BASELINES.md). At the end the slim net is built from the last selection. The loop is
`soft_pruning.py`'s, shared with FPGM's soft mode; a killed run resumes from its last epoch (`soft-pruning.pt` in
its run directory).

The counts are FLOP-matched (`flop_match.match_counts`, every conv by default, residual chains as coupled groups),
so SFP sits at the same FLOP target as every other method. The reference's own setting, 40% of the filters of
every conv, is `fpgm.rate_counts(groups, 0.4)`, with He et al.'s analytic accounting in `fpgm.reference_macs`.
`mode=hard` prunes once by L2 norm, no training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from baselines.flop_match import check_counts
from baselines.soft_pruning import SoftOptions, prune_filters, soft_budget
from tasbench.flop_target import relative_band
from tasbench.pruner import Pruned, Pruner, PruneRequest


@dataclass(frozen=True)
class SfpOptions(SoftOptions):
    """`soft_pruning.SoftOptions` (mode, scope, tolerance, epochs, lr, batch_size), soft mode by default."""

    METHOD: ClassVar[str] = "SFP"


def l2_norms(weight: torch.Tensor) -> torch.Tensor:
    """Each filter's L2 norm (dim 0 of a conv weight): SFP's importance."""
    return weight.flatten(1).norm(dim=1)


def prune_sfp(request: PruneRequest, options: SfpOptions) -> Pruned:
    """Prune `request.model` to `request.ratio` of the FLOPs by SFP: soft zeroing while training, masked filters
    still trained (soft mode), or once by L2 norm (hard mode)."""
    return prune_filters(request, options, l2_norms, freeze_masked=False)


PRUNER = Pruner(
    name="sfp",
    prune=prune_sfp,
    options=SfpOptions,
    needs_data=False,  # hard mode; soft mode (the default) asks through SfpOptions.needs_data
    reads_weights=True,  # the soft training starts from the unpruned net's trained weights
    summary="soft filter pruning (He et al. 2018): lowest-L2 filters zeroed every epoch, still trained; FLOP-matched",
    check=check_counts,
    budget=soft_budget,
    band=lambda options, ratio: relative_band(ratio, options.tolerance),
)

"""L1-norm filter pruning (Li et al., ICLR 2017, "Pruning Filters for Efficient ConvNets", PFEC).

A filter's importance is the sum of the absolute values of its weights; each pruned conv keeps its largest
(BASELINES.md). Two modes:

- paper-faithful (`variant="A"` or `"B"`): the fixed per-stage fractions and skipped layers of Li et al.'s
  ResNet-56/110-pruned-A/B. Only the first conv of a block is pruned, keeping `int(C * (1 - p))` filters; the
  residual chains stay intact. The shapes do not depend on the weights, only the chosen filters do.
- FLOP-matched (no variant): one fraction for every prunable group, found by search (`flop_match.match_counts`)
  so that the counted MACs land within `tolerance` of the target; `scope="all"` prunes residual chains too.

ResNet-56 with zero-pad shortcuts, variant B: the pruned first convs of stages 1/2/3 keep 6/22/57 of 16/32/64
filters, and the MACs fall from 125,485,706 to 90,907,274 (-27.56%; Li et al. report 9.09E7, -27.6%)::

    >>> arch = resnet56(shortcut="zero-pad")
    >>> out = prune_l1(PruneRequest(arch, seeded_resnet(arch, 0), None), L1Options(variant="B"))
    >>> macs(out.arch), out.info["kept"]["stages.0.0.convs.0"]
    (90907274, [1, 2, 4, 7, 9, 11])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from baselines.channel_groups import channel_groups, slice_resnet
from baselines.flop_match import check_matching, group_scores, keep_best, kept_by_layer, match_counts
from tasbench.arch import Arch
from tasbench.errors import ConfigError, choice_error
from tasbench.flop_target import FlopTarget, relative_band
from tasbench.presets import cifar_resnet
from tasbench.pruner import Pruned, Pruner, PruneRequest

# Li et al. (2017), Sec. 4.2 and Table 2, as BASELINES.md transcribes them: per depth and variant, the fraction of
# filters removed from the first conv of each block in stages 1/2/3, and the skipped ("sensitive") layers, numbered
# as convs in network order with the stem as layer 1 (which is the `xchannels` slot of an unpruned CIFAR ResNet).
VARIANTS: dict[int, dict[str, tuple[tuple[float, float, float], tuple[int, ...]]]] = {
    56: {"A": ((0.1, 0.1, 0.1), (16, 20, 38, 54)), "B": ((0.6, 0.3, 0.1), (16, 18, 20, 34, 38, 54))},
    110: {"A": ((0.5, 0.0, 0.0), (36,)), "B": ((0.5, 0.4, 0.3), (36, 38, 74))},
}
VARIANT_NAMES = ("A", "B")


@dataclass(frozen=True)
class L1Options:
    variant: str = ""  # "A" / "B": Li et al.'s fixed shapes (ResNet-56/110 only); "": FLOP-matched to the ratio
    scope: str = "internal"  # FLOP-matched only: "internal" (first convs, as PFEC) or "all" (residual chains too)
    tolerance: float = 0.01  # FLOP-matched only: accepted relative distance to the target MACs

    def __post_init__(self) -> None:
        if self.variant and self.variant not in VARIANT_NAMES:
            raise choice_error("L1 variant", self.variant, VARIANT_NAMES)
        check_matching(self.scope, self.tolerance)


def l1_scores(weight: torch.Tensor) -> torch.Tensor:
    """Sum of |w| over each filter (dim 0) of a conv weight: PFEC's importance."""
    return weight.abs().flatten(1).sum(1)


def variant_counts(arch: Arch, variant: str) -> dict[int, int]:
    """Filters kept per pruned first conv (by slot) in Li et al.'s variant of this CIFAR ResNet-56 or -110."""
    depth = next((d for d in VARIANTS if arch == cifar_resnet(d, arch.num_classes, arch.shortcut)), None)
    if depth is None:
        raise ConfigError(
            f"L1 variant {variant!r} is defined for the full resnet56 and resnet110 only (Li et al., "
            f"Table 2), not for this {sum(arch.xblocks) * arch.convs_per_block + 2}-layer network; "
            f"give --ratio for a FLOP-matched L1 net"
        )
    fractions, skipped = VARIANTS[depth][variant]
    n = arch.layers[0]
    counts = {}
    for block in range(3 * n):
        slot = 2 + 2 * block  # the block's first conv
        width = arch.xchannels[slot]
        if slot not in skipped and fractions[block // n] > 0:
            counts[slot] = int(width * (1 - fractions[block // n]))  # PFEC keeps int(C * (1 - p)), BASELINES.md
    return counts


def prune_l1(request: PruneRequest, options: L1Options) -> Pruned:
    """Prune `request.model` by filter L1 norm: to Li et al.'s variant, or to `request.ratio` of the FLOPs."""
    arch = request.arch
    groups = channel_groups(arch)
    if options.variant:
        fixed = variant_counts(arch, options.variant)
        counts = [fixed.get(g.slots[0], len(g.channels)) if g.internal else len(g.channels) for g in groups]
        info = {"variant": options.variant}
    else:
        counts, info = match_counts(arch, groups, request.ratio, options.tolerance, options.scope, "L1")
    keep = keep_best(groups, group_scores(request.model, arch, groups, l1_scores), counts)
    new_arch, model = slice_resnet(request.model, arch, keep)
    return Pruned(new_arch, model, {**info, "kept": kept_by_layer(arch, keep), "inherits_weights": True})


def check_l1(arch: Arch, options: L1Options, ratio: float) -> None:
    """Li et al.'s variant exists for this net, or the FLOP matching reaches `ratio` (counts only, no weights)."""
    if options.variant:
        variant_counts(arch, options.variant)
    else:
        match_counts(arch, channel_groups(arch), ratio, options.tolerance, options.scope, "L1")


def l1_band(options: L1Options, ratio: float) -> FlopTarget | None:
    """FLOP-matched: `ratio` within the relative tolerance; a paper variant is a fixed shape with no FLOP target."""
    return None if options.variant else relative_band(ratio, options.tolerance)


PRUNER = Pruner(
    name="l1",
    prune=prune_l1,
    options=L1Options,
    needs_data=False,
    reads_weights=True,  # filters are scored by the unpruned net's trained weights
    summary="filters with the smallest L1 norm removed (Li et al. 2017): variants A/B or FLOP-matched",
    check=check_l1,
    band=l1_band,
    fixed_shape=lambda options: bool(options.variant),  # a paper variant takes no ratio
)

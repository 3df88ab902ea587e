"""What L1-norm, FPGM, SFP and Taylor share: per-group keep counts at a FLOP target, scoring filters, keeping the
best.

A method supplies only a per-filter score of one conv (`l1_norm.l1_scores`, `fpgm.distance_sums` of its weight;
`taylor.taylor_scores` of its weight and gradients); the rest is here. FLOP matching keeps `max(1, int(n * t))`
channels of every prunable group of `n` channels (PFEC's `int(C * (1 - p))` rule with `t = 1 - p`, see BASELINES.md)
and bisects `t` on the exact MACs with the engine's `fit_flops`, which then gives block-internal convs one channel
at a time until the net lands within the tolerance.
The counts depend on the shape only; which channels fill them depends on the weights.

ResNet-56 (official shortcut) at half the FLOPs, first convs only (`scope="internal"`)::

    >>> groups = channel_groups(resnet56())
    >>> counts, info = match_counts(resnet56(), groups, 0.5, 0.01, "internal", "L1")
    >>> info, macs(pruned_arch(resnet56(), keep_counts(groups, counts)))
    ({'factor': 0.4999..., 'filled_channels': 16}, 62286474)        # 49.53% of 125,747,850

At the factor found every first conv keeps 7/15/31 of 16/32/64 filters; filling gives the 9 stage-1 convs and 7 of
the stage-2 convs one filter back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from baselines.channel_groups import ChannelGroup, Keep, channel_groups, keep_from_groups, pruned_arch, slot_convs
from tasbench.arch import Arch
from tasbench.errors import ConfigError, choice_error
from tasbench.flop_target import fit_flops

SCOPES = ("internal", "all")  # internal: block-internal convs only (PFEC on ResNets); all: residual chains as well
FilterScore = Callable[[torch.Tensor], torch.Tensor]  # conv weight (out, in, k, k) -> one score per filter


def check_matching(scope: str, tolerance: float) -> None:
    """The FLOP-matching options every baseline shares: which groups may shrink, how close to the target."""
    if scope not in SCOPES:
        raise choice_error("scope", scope, SCOPES)
    if not 0 < tolerance < 0.5:
        raise ConfigError(f"tolerance must be in (0, 0.5), got {tolerance}")


def prunable(group: ChannelGroup, scope: str) -> bool:
    return group.internal or scope == "all"


def counts_at(groups: list[ChannelGroup], t: float, scope: str) -> list[int]:
    """Channels kept per group when every prunable group keeps the fraction `t` (floored, at least 1)."""
    return [max(1, int(len(g.channels) * t)) if prunable(g, scope) else len(g.channels) for g in groups]


def keep_counts(groups: list[ChannelGroup], counts: list[int]) -> Keep:
    """Slot widths as a `Keep` of placeholder channels, for FLOP counting before any channel is chosen."""
    return keep_from_groups(groups, [list(g.channels[:k]) for g, k in zip(groups, counts)])


def match_counts(
    arch: Arch, groups: list[ChannelGroup], ratio: float, tolerance: float, scope: str, method: str
) -> tuple[list[int], dict]:
    """Channels kept per group so that the pruned net's MACs lie within `tolerance` of `ratio * macs(arch)`."""
    check_matching(scope, tolerance)
    label = f"{method} pruning (scope {scope!r})"
    shape, info = fit_flops(
        arch, lambda t: pruned_arch(arch, keep_counts(groups, counts_at(groups, t, scope))), ratio, tolerance, label
    )
    counts = counts_at(groups, info["factor"], scope)
    # fit_flops only widens block-internal convs, each of which is a group of one slot: read their widths back.
    counts = [shape.xchannels[g.slots[0]] if g.internal else k for g, k in zip(groups, counts)]
    if pruned_arch(arch, keep_counts(groups, counts)) != shape:
        raise ConfigError(f"{label} found no shape of {ratio} of the FLOPs that its channel groups can express")
    return counts, info


def check_counts(arch: Arch, options: Any, ratio: float) -> None:
    """A pruner's `check`: the FLOP matching of `options` (its `scope`, `tolerance`, and `METHOD` for the message)
    reaches `ratio`; counts only, no weights."""
    match_counts(arch, channel_groups(arch), ratio, options.tolerance, options.scope, options.METHOD)


@torch.no_grad()
def group_scores(model: nn.Module, arch: Arch, groups: list[ChannelGroup], score: FilterScore) -> list[torch.Tensor]:
    """Each group's score per channel: the sum, over the group's slots, of `score` on the conv making that slot.

    For one conv that is the method's own score. A residual chain adds its convs' scores (projection shortcuts left
    out), as a coupled group is ranked in Torch-Pruning; PFEC never scores a chain (it keeps them intact).
    """
    modules = dict(model.named_modules())
    return summed_by_group(arch, groups, lambda name: score(modules[name].weight.detach().double().cpu()))


def summed_by_group(
    arch: Arch, groups: list[ChannelGroup], conv_score: Callable[[str], torch.Tensor]
) -> list[torch.Tensor]:
    """`group_scores` for a score that needs more than a conv's weight (Taylor's gradients): `conv_score(name)`
    gives one float64 score per filter of the conv of that module name."""
    convs = slot_convs(arch)
    cache: dict[int, torch.Tensor] = {}
    out = []
    for g in groups:
        total = torch.zeros(len(g.channels), dtype=torch.float64)
        for slot in g.slots:
            if slot not in cache:
                cache[slot] = conv_score(convs[slot])
            total += cache[slot][list(g.channels)]
        out.append(total)
    return out


def keep_best(groups: list[ChannelGroup], scores: list[torch.Tensor], counts: list[int]) -> Keep:
    """Keep the `counts[i]` highest-scored channels of group i (ties: the lower index stays) in every slot."""
    kept = []
    for g, s, k in zip(groups, scores, counts):
        order = torch.sort(s, descending=True, stable=True).indices[:k]
        kept.append(sorted(g.channels[i] for i in order.tolist()))
    return keep_from_groups(groups, kept)


def kept_by_layer(arch: Arch, keep: Keep) -> dict[str, list[int]]:
    """The pruned convs' kept filter indices by module name (JSON-ready, for a pruner's `info`)."""
    return {
        name: keep[slot]
        for slot, name in slot_convs(arch).items()
        if slot in keep and len(keep[slot]) < arch.xchannels[slot]
    }

"""Residual-aware channel groups of a ResNet `Arch`, and physical slicing of a trained net into a smaller one.

A *slot* is an index into `arch.xchannels`: slot 0 is the image, slot 1 the stem conv's output, then every block
conv's output in network order (for an unpruned CIFAR ResNet the slot is the conv's layer number as Li et al. count
them, see BASELINES.md). Each slot is the output of one conv and its BN. An addition ties channels of different
slots: an identity shortcut ties channel c of a block's input slot to channel c of its last conv's slot; a zero-pad
shortcut (option A) ties the same way for c below its input width (the appended channels are zeros, tied to
nothing); a projection ties nothing (its 1x1 conv maps any kept input channel to any kept output channel).
A `ChannelGroup` is a set of slots and the channels that are kept or removed in all of them at once.

ResNet-20, official shortcut: stage 1's addition chain (stem + every block's second conv) is one group, the first
conv of each block is a group on its own, and the stride-2 projections start a new chain per stage::

    >>> [(g.slots, len(g.channels)) for g in channel_groups(resnet20())][:6]
    [((1, 3, 5, 7), 16), ((2,), 16), ((4,), 16), ((6,), 16), ((8,), 32), ((9, 11, 13), 32)]

With zero-pad shortcuts channel 3 of the stem reaches every stage, channel 20 starts in stage 2::

    >>> groups = channel_groups(resnet20(shortcut="zero-pad"))
    >>> [(g.slots, g.channels[0], len(g.channels)) for g in groups if not g.internal]
    [((1, 3, ..., 19), 0, 16), ((9, 11, ..., 19), 16, 16), ((15, 17, 19), 32, 32)]

`slice_resnet(model, arch, keep)` then builds `build_resnet` of the smaller shape and copies the kept rows/columns
of every conv, BN and the classifier into it; `zero_channels` is the masked twin (same net, removed channels zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tasbench.arch import Arch, block_specs
from tasbench.errors import ConfigError
from tasbench.resnet import seeded_resnet

Keep = dict[int, list[int]]  # slot -> the kept channel indices of that slot, ascending; absent slots keep all


@dataclass(frozen=True)
class ChannelGroup:
    """Channels `channels` of every slot in `slots` are kept or removed together."""

    slots: tuple[int, ...]
    channels: tuple[int, ...]
    internal: bool  # one block-internal conv (no addition reads it): the only kind PFEC prunes on ResNets


def channel_groups(arch: Arch) -> list[ChannelGroup]:
    """The coupled channel groups of `arch`, ordered by first slot, then first channel."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(node: tuple[int, int]) -> tuple[int, int]:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    residual = [1]
    groups = []
    in_slot = 1
    for spec in block_specs(arch):
        out_slot = spec.first_conv + len(spec.widths) - 1
        residual.append(out_slot)
        groups += [ChannelGroup((s,), tuple(range(arch.xchannels[s])), True) for s in range(spec.first_conv, out_slot)]
        tied = {"identity": spec.in_width, "zero-pad": spec.in_width, "projection": 0}[spec.shortcut]
        for c in range(tied):
            parent[find((out_slot, c))] = find((in_slot, c))
        in_slot = out_slot
    members: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for slot in residual:
        for c in range(arch.xchannels[slot]):
            members.setdefault(find((slot, c)), []).append((slot, c))
    by_slots: dict[tuple[int, ...], list[int]] = {}
    for nodes in members.values():
        # Ties are always channel c to channel c, so a component is one channel index across a set of slots.
        slots = tuple(sorted(s for s, _ in nodes))
        by_slots.setdefault(slots, []).append(nodes[0][1])
    groups += [ChannelGroup(slots, tuple(sorted(cs)), False) for slots, cs in by_slots.items()]
    return sorted(groups, key=lambda g: (g.slots[0], g.channels[0]))


def layer_slots(arch: Arch) -> dict[str, tuple[int | None, int | None]]:
    """(output slot, input slot) of every conv, BN and the classifier of `build_resnet(arch)`, by module name.

    A BN's input slot is its output slot; the classifier has no output slot. ResNet-20: `stem.conv` (1, 0),
    `stages.1.0.convs.0` (8, 7), `stages.1.0.shortcut.conv` (9, 7), `fc` (None, 19).
    """
    out: dict[str, tuple[int | None, int | None]] = {"stem.conv": (1, 0), "stem.bn": (1, 1)}
    in_slot = 1
    for spec in block_specs(arch):
        name = f"stages.{spec.stage}.{spec.index}"
        prev = in_slot
        for i in range(len(spec.widths)):
            slot = spec.first_conv + i
            out[f"{name}.convs.{i}"], out[f"{name}.bns.{i}"] = (slot, prev), (slot, slot)
            prev = slot
        if spec.shortcut == "projection":
            out[f"{name}.shortcut.conv"] = (prev, in_slot)
        if spec.shortcut_bn:
            out[f"{name}.shortcut.bn"] = (prev, prev)
        in_slot = prev
    out["fc"] = (None, in_slot)
    return out


def output_convs(model: nn.Module, arch: Arch) -> dict[str, tuple[nn.Conv2d, int]]:
    """Every conv of `model` (built from `arch`) whose output channels a selection can remove, by module name, with
    its output slot: the convs `zero_channels` zeroes, projection shortcuts included."""
    modules = dict(model.named_modules())
    return {
        name: (modules[name], slot)
        for name, (slot, _) in layer_slots(arch).items()
        if slot is not None and isinstance(modules[name], nn.Conv2d)
    }


def slot_convs(arch: Arch) -> dict[int, str]:
    """The conv whose filters make each slot's channels (projection shortcuts, which add into a slot, left out)."""
    return {o: name for name, (o, _) in layer_slots(arch).items() if name == "stem.conv" or ".convs." in name}


def keep_from_groups(groups: list[ChannelGroup], kept: list[list[int]]) -> Keep:
    """Turn one kept-channel list per group into the kept channels of every slot."""
    keep: dict[int, set[int]] = {}
    for group, channels in zip(groups, kept):
        for slot in group.slots:
            keep.setdefault(slot, set()).update(channels)
    return {slot: sorted(cs) for slot, cs in sorted(keep.items())}


def pruned_arch(arch: Arch, keep: Keep) -> Arch:
    """`arch` with each slot's width set to its number of kept channels."""
    widths = list(arch.xchannels)
    for slot, channels in keep.items():
        widths[slot] = len(channels)
    return arch.replace(xchannels=tuple(widths))


def slice_resnet(model: nn.Module, arch: Arch, keep: Keep) -> tuple[Arch, nn.Module]:
    """Build the smaller net `pruned_arch(arch, keep)` and copy the kept weights and BN statistics of `model` in.

    One module has nowhere to go: the BN of the unpruned ResNet-164's stride-1 projection, which the release's pruned
    nets do not have (`tasbench.arch.projection_has_bn`). It is dropped, so there the sliced net differs from the
    zeroed one by that BN's affine map.
    """
    new_arch = pruned_arch(arch, keep)
    if [s.shortcut for s in block_specs(new_arch)] != [s.shortcut for s in block_specs(arch)]:
        # A residual chain split (an identity would need a projection), or a bottleneck's stem and first chain cut
        # to one width (its stride-1 projection would become an identity): no module for the sliced weights.
        raise ConfigError(
            "this pruning changes a shortcut (identity <-> projection): a residual group was split, or "
            "a projection's two sides were cut to the same width"
        )
    new = seeded_resnet(new_arch, 0)  # every tensor is overwritten below; the seed only spares the global RNG
    device = next(model.parameters()).device
    old_modules, new_modules = dict(model.named_modules()), dict(new.named_modules())

    def index(slot: int | None, width: int) -> torch.Tensor:
        return torch.tensor(keep.get(slot, range(width)) if slot is not None else range(width), device=device)

    with torch.no_grad():
        for name, (out_slot, in_slot) in layer_slots(new_arch).items():
            src, dst = old_modules[name], new_modules[name]
            if isinstance(src, nn.BatchNorm2d):
                rows = index(out_slot, src.num_features)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(dst, key).copy_(getattr(src, key)[rows])
                dst.num_batches_tracked.copy_(src.num_batches_tracked)
            elif isinstance(src, nn.Conv2d):
                rows, cols = index(out_slot, src.out_channels), index(in_slot, src.in_channels)
                dst.weight.copy_(src.weight[rows][:, cols])
            else:  # the classifier: only its inputs shrink
                dst.weight.copy_(src.weight[:, index(in_slot, src.in_features)])
                dst.bias.copy_(src.bias)
    return new_arch, new.to(device).train(model.training)


def zero_channels(model: nn.Module, arch: Arch, keep: Keep, bn: bool = True) -> None:
    """Zero, in place, the filters of every removed channel (and with `bn`, its BN weight and bias as well).

    With `bn=True` the net computes exactly what `slice_resnet` builds (in eval mode): a removed channel is 0 after
    its BN, so the next layer's weights on it do not matter. With `bn=False` it is FPGM's soft mask (conv filters
    only, as `Mask.do_mask` in the FPGM reference code).
    """
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, (out_slot, _) in layer_slots(arch).items():
            if out_slot not in keep:
                continue
            module = modules[name]
            removed = torch.ones(arch.xchannels[out_slot], dtype=torch.bool, device=module.weight.device)
            removed[keep[out_slot]] = False
            if isinstance(module, nn.Conv2d):
                module.weight[removed] = 0
            elif bn:
                module.weight[removed] = 0
                module.bias[removed] = 0

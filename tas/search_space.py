"""The TAS search space of a ResNet: 8 candidate widths per conv, candidate depths per stage, and the shape they pick.

Widths (official `get_width_choices`): every conv, the stem included, may keep `int(C * r)` channels for
r in 0.3, 0.4, ..., 1.0, de-duplicated. Depths (official `get_depth_choices`): on CIFAR, stage s with n blocks may
keep `range(1, n + 1, 2)` blocks plus n itself (all of 1..n when n <= 3); on ImageNet, with m = min(layers), stage
s may keep `int(layers[s] * j / m)` blocks for j = 1..m.

    >>> space = search_space(resnet20())
    >>> space.widths[0], space.depths            # the stem's candidates; ResNet-20's 3 stages
    ((4, 6, 8, 9, 11, 12, 14, 16), ((1, 2, 3), (1, 2, 3), (1, 2, 3)))
    >>> len(space.widths), smallest_ratio(space)  # 19 width rows: stem + 18 block convs
    (19, 0.0245...)

`derive(space, width_index, depth_index)` turns one choice per row into the `Arch` the engine builds and counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flops import macs

WIDTH_RATIOS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def width_candidates(channels: int) -> tuple[int, ...]:
    """`int(channels * r)` for the 8 ratios, without repeats or zeros: 16 -> (4, 6, 8, 9, 11, 12, 14, 16)."""
    return tuple(sorted({max(1, int(channels * r)) for r in WIDTH_RATIOS}))


def depth_candidates(family: str, layers: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Candidate block counts per stage: ResNet-56 ((1, 3, 5, 7, 9),) * 3; ResNet-50 ((1, 2, 3), (1, 2, 4), ...)."""
    if family == "imagenet":
        m = min(layers)
        return tuple(tuple(sorted({int(n * j / m) for j in range(1, m + 1)})) for n in layers)
    out = []
    for n in layers:
        choices = list(range(1, n + 1)) if n <= 3 else list(range(1, n + 1, 2))
        out.append(tuple(choices if choices[-1] == n else choices + [n]))
    return tuple(out)


@dataclass(frozen=True)
class SearchSpace:
    """Everything the search needs to know about the unpruned `arch`: candidates per width row and per stage.

    Width row i is the conv whose width is `arch.xchannels[i + 1]` (row 0 is the stem), so a choice per row
    fills `xchannels` directly.
    """

    arch: Arch
    widths: tuple[tuple[int, ...], ...]  # candidate widths of each conv, in xchannels order (input excluded)
    depths: tuple[tuple[int, ...], ...]  # candidate block counts of each stage

    @property
    def rows(self) -> int:
        return len(self.widths)

    @property
    def max_width_candidates(self) -> int:
        return max(len(w) for w in self.widths)

    @property
    def max_depth_candidates(self) -> int:
        return max(len(d) for d in self.depths)


def search_space(arch: Arch) -> SearchSpace:
    """The TAS search space around the full-width, full-depth `arch` (a preset such as `resnet56()`)."""
    if arch.xblocks != arch.layers:
        raise ConfigError(
            f"TAS searches from a full-depth net; this one keeps xblocks={list(arch.xblocks)} of "
            f"layers={list(arch.layers)}"
        )
    if arch.shortcut == "zero-pad":
        # A searched net may shrink a residual width, which a zero-pad shortcut cannot do (see arch.py).
        raise ConfigError(
            f"TAS searches nets with a projection shortcut (official, torchvision), not {arch.shortcut!r}"
        )
    widths = tuple(width_candidates(c) for c in arch.xchannels[1:])
    return SearchSpace(arch, widths, depth_candidates(arch.family, arch.layers))


def derive(space: SearchSpace, width_index: list[int], depth_index: list[int]) -> Arch:
    """The `Arch` with width `space.widths[i][width_index[i]]` for conv row i and the chosen depth per stage."""
    if len(width_index) != space.rows or len(depth_index) != len(space.depths):
        raise ConfigError(
            f"need {space.rows} width and {len(space.depths)} depth choices, "
            f"got {len(width_index)} and {len(depth_index)}"
        )
    xchannels = (space.arch.xchannels[0],) + tuple(c[i] for c, i in zip(space.widths, width_index))
    xblocks = tuple(d[i] for d, i in zip(space.depths, depth_index))
    return space.arch.replace(xchannels=xchannels, xblocks=xblocks)


def choices(space: SearchSpace, arch: Arch) -> tuple[list[int], list[int]]:
    """The inverse of `derive`: the candidate index of every width row and every stage that give `arch` (a shape of
    this space, dropped blocks' widths included, as the release's `.config` files keep them).

    >>> choices(space, derive(space, w, d)) == (w, d)
    True
    """
    try:
        width_index = [c.index(x) for c, x in zip(space.widths, arch.xchannels[1:], strict=True)]
        depth_index = [c.index(x) for c, x in zip(space.depths, arch.xblocks, strict=True)]
    except ValueError:
        raise ConfigError(
            f"the shape is not in the TAS search space of {list(space.arch.layers)} blocks: a width or a "
            f"depth is not a candidate"
        ) from None
    return width_index, depth_index


def smallest_arch(space: SearchSpace, search: str = "width+depth") -> Arch:
    """The cheapest net the search can reach: narrowest widths and shallowest stages, for the dimensions searched
    ("width+depth" and "random" both, "width" widths only (full depth), "depth" depths only (full width))."""
    widths = [len(c) - 1 for c in space.widths] if search == "depth" else [0] * space.rows
    depths = [len(d) - 1 for d in space.depths] if search == "width" else [0] * len(space.depths)
    return derive(space, widths, depths)


def smallest_ratio(space: SearchSpace, search: str = "width+depth") -> float:
    return macs(smallest_arch(space, search)) / macs(space.arch)


def check_reachable(space: SearchSpace, ratio: float, search: str = "width+depth") -> None:
    """A FLOP ratio the search can reach: at least that of the smallest net of the space (at most 1, see
    `tasbench.pruner.check_ratio`)."""
    low = smallest_ratio(space, search)
    if ratio < low:
        raise ConfigError(
            f"FLOP ratio {ratio} is below the smallest net this search can reach ({low:.4f} of the "
            f"FLOPs with search={search!r}); allowed: [{low:.4f}, 1]"
        )

"""Fitting a shape to a FLOP target: bisect one thinning factor on the exact MACs, then fill to within the band.

Every pruner that thins a net by one factor (uniform scaling, the FLOP-matched L1-norm and FPGM pruners) finds its
shape here; `plan` uses `scale_widths` for the dry run's cost estimate.
"""

from __future__ import annotations

from collections.abc import Callable

from tasbench.arch import Arch, block_specs
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.pruner import relative_band


def scale_widths(arch: Arch, factor: float) -> Arch:
    """Every conv width times `factor`, rounded half up, at least 1; the input channels stay as they are."""
    widths = [arch.xchannels[0]] + [max(1, int(w * factor + 0.5)) for w in arch.xchannels[1:]]
    return arch.replace(xchannels=tuple(widths))


def fit_flops(
    arch: Arch, shape_at: Callable[[float], Arch], ratio: float, tolerance: float, method: str
) -> tuple[Arch, dict]:
    """Bisect `t` in [0, 1] for the largest `shape_at(t)` at or under the target, then fill block-internal convs.

    `shape_at` must grow with `t` (its MACs never fall as `t` rises) and keep `arch`'s block layout; `t = 0` is the
    smallest net the method can build. Returns the shape and `{"factor": t, "filled_channels"}`.
    """
    full = macs(arch)
    target = ratio * full
    low, high = (full * bound for bound in relative_band(ratio, tolerance))
    smallest = macs(shape_at(0.0))
    if smallest > high:
        raise ConfigError(f"FLOP ratio {ratio} is below what {method} reaches (smallest net: {smallest / full:.4f})")
    lo, hi = 0.0, 1.0
    for _ in range(60):  # largest factor whose net stays at or under the target
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if macs(shape_at(mid)) <= target else (lo, mid)
    scaled = shape_at(lo)
    widths = list(scaled.xchannels)
    internal = [s.first_conv + i for s in block_specs(arch) for i in range(len(s.widths) - 1)]
    current, added = macs(scaled), 0
    while current < low:
        for i in sorted(internal, key=lambda i: (widths[i] / arch.xchannels[i], i)):
            if widths[i] >= arch.xchannels[i]:
                continue
            widths[i] += 1
            trial = macs(arch.replace(xchannels=tuple(widths)))
            if trial <= high:
                current, added = trial, added + 1
                break
            widths[i] -= 1
        else:
            break  # no single channel fits under the upper bound any more
    if not low <= current <= high:
        raise ConfigError(
            f"{method} cannot reach {ratio} of the FLOPs within {tolerance:.0%} (closest: {current / full:.4f})"
        )
    return arch.replace(xchannels=tuple(widths)), {"factor": lo, "filled_channels": added}

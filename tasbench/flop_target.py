"""A FLOP target and its band, and fitting a shape to it: bisect one thinning factor on the exact MACs, then fill.

A `FlopTarget` is what "on target" means for a method, as numbers and as words: uniform, FLOP-matched L1 and FPGM
match the FLOPs from both sides within a relative tolerance, TAS searches for a net at or under the target within
an absolute one (the zero of its FLOP loss), and a released shape sits at its own ratio::

    relative_band(0.5, 0.01)          # FlopTarget(0.5, 0.495, 0.505, "within 1% of 0.5, either side")
    at_most(0.5, 0.05)                # FlopTarget(0.5, 0.45, 0.5, "at most 0.5, at least 0.45")
    absolute_band(0.55, 0.001)        # FlopTarget(0.55, 0.549, 0.551, "within 0.001 of 0.55, either side")

Every pruner that thins a net by one factor (uniform scaling, the FLOP-matched L1-norm and FPGM pruners) finds its
shape here; `plan` uses `scale_widths` for the dry run's cost estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tasbench.arch import Arch, block_specs
from tasbench.errors import ConfigError
from tasbench.flops import macs


@dataclass(frozen=True)
class FlopTarget:
    """The FLOP ratio (pruned / unpruned MACs) a pruner aims at, the band [low, high] a pruned net must land in,
    and `rule`: that band in words, for metrics.json and error messages."""

    ratio: float
    low: float
    high: float
    rule: str

    def contains(self, flop_ratio: float) -> bool:
        return self.low <= flop_ratio <= self.high


def relative_band(ratio: float, tolerance: float) -> FlopTarget:
    """Both sides, relative: `ratio` times (1 -+ tolerance) (uniform, FLOP-matched L1 and FPGM).

    >>> relative_band(0.5, 0.01).contains(0.4996), relative_band(0.5, 0.01).contains(0.506)
    (True, False)
    """
    rule = f"within {100 * tolerance:g}% of {ratio:g}, either side"
    return FlopTarget(ratio, ratio * (1 - tolerance), ratio * (1 + tolerance), rule)


def absolute_band(ratio: float, tolerance: float) -> FlopTarget:
    """Both sides, absolute: `ratio` -+ tolerance (a released shape at its own ratio)."""
    return FlopTarget(ratio, ratio - tolerance, ratio + tolerance, f"within {tolerance:g} of {ratio:g}, either side")


def at_most(ratio: float, tolerance: float) -> FlopTarget:
    """One side, absolute: [ratio - tolerance, ratio] (TAS: where its FLOP loss is zero)."""
    return FlopTarget(ratio, ratio - tolerance, ratio, f"at most {ratio:g}, at least {ratio - tolerance:g}")


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
    band = relative_band(ratio, tolerance)
    low, high = full * band.low, full * band.high
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

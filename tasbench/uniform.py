"""Uniform width scaling: every conv's width times one factor, the factor found by bisection on the exact FLOPs.

The natural "no search" baseline. Widths are rounded to the nearest integer, so residual widths tied by an addition
stay equal and no projection appears that the unpruned net lacks. Rounding makes FLOPs a step function of the
factor: on ResNet-20, stage 1's 16-wide convs step by one channel at a time, jumping the FLOPs by up to ~8%. To
still land within `tolerance` of the target, the block-internal convs (whose outputs feed no addition) then take
one more channel at a time, lowest kept fraction first, until the FLOPs are within tolerance.

    >>> out = prune_uniform(PruneRequest(resnet56(), build_resnet(resnet56()), ratio=0.5), UniformOptions())
    >>> out.info["factor"], macs(out.arch) / macs(resnet56())
    (0.703..., 0.4996...)

The pruned net starts from a fresh initialisation (seeded by the request): uniform scaling selects no channels, so
there is nothing to inherit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tasbench.arch import Arch, block_specs
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.pruner import Pruned, Pruner, PruneRequest, relative_band
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed


@dataclass(frozen=True)
class UniformOptions:
    tolerance: float = 0.01  # accepted relative distance between the pruned net's MACs and the target

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 0.5:
            raise ConfigError(f"tolerance must be in (0, 0.5), got {self.tolerance}")


def scale_widths(arch: Arch, factor: float) -> Arch:
    """Every conv width times `factor`, rounded half up, at least 1; the input channels stay as they are."""
    widths = [arch.xchannels[0]] + [max(1, int(w * factor + 0.5)) for w in arch.xchannels[1:]]
    return arch.replace(xchannels=tuple(widths))


def uniform_arch(arch: Arch, ratio: float, tolerance: float = 0.01) -> tuple[Arch, dict]:
    """The uniformly thinned `arch` whose MACs are within `tolerance` of `ratio * macs(arch)`, and how it was found."""
    return fit_flops(arch, lambda factor: scale_widths(arch, factor), ratio, tolerance, "uniform scaling")


def fit_flops(
    arch: Arch, shape_at: Callable[[float], Arch], ratio: float, tolerance: float, method: str
) -> tuple[Arch, dict]:
    """Bisect `t` in [0, 1] for the largest `shape_at(t)` at or under the target, then fill block-internal convs.

    `shape_at` must grow with `t` (its MACs never fall as `t` rises) and keep `arch`'s block layout; `t = 0` is the
    smallest net the method can build. Shared by every pruner that thins by one factor (uniform scaling here, the
    FLOP-matched L1-norm and FPGM pruners in `baselines/`). Returns the shape and `{"factor": t, "filled_channels"}`.
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


def prune_uniform(request: PruneRequest, options: UniformOptions) -> Pruned:
    arch, info = uniform_arch(request.arch, request.ratio, options.tolerance)
    model = seeded_resnet(arch, derive_seed(request.seed, "uniform-init"))
    return Pruned(arch, model, {**info, "inherits_weights": False})


def check_uniform(arch: Arch, options: UniformOptions, ratio: float) -> None:
    """The shape search itself (bisection on exact MACs, milliseconds): it names a ratio it cannot reach."""
    uniform_arch(arch, ratio, options.tolerance)


PRUNER = Pruner(
    name="uniform",
    prune=prune_uniform,
    options=UniformOptions,
    needs_data=False,
    summary="every width times one factor, found by bisection on the exact FLOPs",
    check=check_uniform,
    band=lambda options, ratio: relative_band(ratio, options.tolerance),
)

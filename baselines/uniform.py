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

from dataclasses import dataclass

from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flop_target import fit_flops, relative_band, scale_widths
from tasbench.pruner import Pruned, Pruner, PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed


@dataclass(frozen=True)
class UniformOptions:
    tolerance: float = 0.01  # accepted relative distance between the pruned net's MACs and the target

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 0.5:
            raise ConfigError(f"tolerance must be in (0, 0.5), got {self.tolerance}")


def uniform_arch(arch: Arch, ratio: float, tolerance: float = 0.01) -> tuple[Arch, dict]:
    """The uniformly thinned `arch` whose MACs are within `tolerance` of `ratio * macs(arch)`, and how it was found."""
    return fit_flops(arch, lambda factor: scale_widths(arch, factor), ratio, tolerance, "uniform scaling")


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

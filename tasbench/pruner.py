"""The common pruner interface and its registry by name.

A pruner takes the unpruned net and a FLOP target and returns a really smaller network: the new `Arch` it decided,
a module built from it by `build_resnet` (with inherited weights where the method inherits them), and a
JSON-ready `info` dict. TAS, L1-norm, FPGM and uniform scaling all look like this::

    pruner = get_pruner("uniform")
    out = pruner.prune(PruneRequest(arch=resnet56(), model=build_resnet(resnet56()), ratio=0.5), pruner.options())
    macs(out.arch) / macs(resnet56())   # 0.4996..., within 1% of 0.5

Each pruner also says which FLOP ratios count as "on target" (`band`, a `FlopTarget`), so a run records whether
its built net is::

    pruner.band(pruner.options(), 0.5)   # FlopTarget(0.5, 0.495, 0.505, "within 1% of 0.5, either side")

Pruners register under the entry-point group `tas_bench.pruners` (see pyproject.toml), so the engine finds `tas`
and `baselines` without importing them, and neither method package needs the other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import torch
from torch import nn

from tasbench.arch import Arch
from tasbench.data import ImageData
from tasbench.errors import ConfigError, choice_error
from tasbench.flop_target import FlopTarget

ENTRY_POINT_GROUP = "tas_bench.pruners"
FIXED_SHAPE_RULE = "a fixed shape: no FLOP target"  # the `band_rule` of a net whose options chose its shape


def check_ratio(ratio: float) -> float:
    """A FLOP ratio (pruned / unpruned MACs) must lie in (0, 1]."""
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        raise ConfigError(f"FLOP ratio {ratio!r} is outside (0, 1]; it is the pruned net's share of the unpruned FLOPs")
    return float(ratio)


@dataclass
class PruneRequest:
    """What every pruner gets: the unpruned shape and net, the FLOP target, and (if it needs them) the data."""

    arch: Arch
    model: nn.Module  # built from `arch`, trained or freshly initialised, as the method needs
    ratio: float | None  # target MACs as a fraction of macs(arch), in (0, 1]; None: the options fix the shape
    data: ImageData | None = None
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workdir: str | None = None  # where a long-running pruner (a search, soft pruning) keeps its resumable state
    progress: bool = False  # show a progress bar

    def __post_init__(self) -> None:
        if self.ratio is not None:
            check_ratio(self.ratio)


@dataclass
class Pruned:
    arch: Arch
    model: nn.Module  # build_resnet(arch), weights inherited or fresh
    info: dict  # JSON-ready: kept indices, scores, the factor found...


@dataclass(frozen=True)
class PruneBudget:
    """What a pruner trains before it decides, for the dry run's plan and cost estimate.

    TAS on CIFAR-10 at the official budget: `PruneBudget("search 600 ep x 98 steps (batch 256/half)",
    train_images=600 * 2 * 25_000, pass_cost=1.5)` (every weight-half image and as many architecture draws).
    """

    label: str
    train_images: int  # images through the (unpruned) net being trained, forward and backward
    eval_images: int = 0  # images through the unpruned net, forward only
    pass_cost: float = 1.0  # one training image's cost, in training passes of the unpruned net


@dataclass(frozen=True)
class Pruner:
    """A registry entry: the method's function, its options dataclass (all fields defaulted), what it needs.

    `needs_data`: the method gets the data set for every call; an options object may also ask for it through a
    `needs_data` property (FPGM's soft mode trains, its hard mode does not). Ask `needs_data(pruner, options)`.
    `check(arch, options, ratio)`: optional; raises a ConfigError for a run that cannot work (an L1 variant of a
    net Li et al. did not prune, a ratio below what the method reaches) without pruning anything, so a sweep
    names its bad runs before anything trains. It must be cheap: no training, well under a second.
    `budget(options, train_images, test_images)`: optional; the training the pruner does per run (None: none).
    `band(options, ratio)`: the `FlopTarget` a net pruned to `ratio` must land in, or None for a fixed shape that
    has no FLOP target (L1's paper variants A/B); a pruner without it records no band.
    `fixed_shape(options)`: optional; True when the options choose a shape of their own that takes no ratio (L1's
    `variant=A|B`): the request's ratio may then be None. Ask `fixed_shape(pruner, options)`.
    `shape_note(arch, options)`: optional; for the dry run, the shape these options fix, if they fix one, in a few
    words with its exact MACs ("compares/CIFAR100-FIX-R32.config: 41,095,916 MACs, 0.5945"); None: no fixed shape.
    `reads_weights`: the method scores the unpruned net's trained weights (L1, FPGM), so `prune` without --weights
    says it prunes a fresh initialisation; False: it uses the net's shape only (TAS searches from a fresh
    initialisation, as the official release does; uniform scaling builds a fresh net), so --weights is refused.
    """

    name: str
    prune: Callable[[PruneRequest, Any], Pruned]
    options: type
    needs_data: bool = False
    summary: str = ""
    check: Callable[[Arch, Any, float], None] | None = None
    budget: Callable[[Any, int, int], PruneBudget | None] | None = None
    band: Callable[[Any, float], FlopTarget | None] | None = None
    reads_weights: bool = False
    fixed_shape: Callable[[Any], bool] | None = None
    shape_note: Callable[[Arch, Any], str | None] | None = None


def needs_data(pruner: Pruner, options: Any) -> bool:
    """Whether the method, with these options, reads the data set: `get_pruner("fpgm")` in soft mode does (it
    trains while it prunes), in hard mode it does not; TAS's learned search does, its random search does not."""
    return pruner.needs_data or bool(getattr(options, "needs_data", False))


def fixed_shape(pruner: Pruner, options: Any) -> bool:
    """Whether these options choose the shape by themselves, with no FLOP ratio (L1's `variant="B"`)."""
    return pruner.fixed_shape is not None and pruner.fixed_shape(options)


def band_record(pruner: Pruner, options: Any, ratio: float, flop_ratio: float) -> dict:
    """A run's `target_band`, whether its net of `flop_ratio` (pruned / unpruned MACs) is `in_band`, and the
    `band_rule` in words, for metrics.json; no band for a fixed shape, and nothing when the pruner defines no band.

    >>> band_record(get_pruner("tas"), SearchConfig(), 0.5, 0.516)    # flop_tolerance 0.05: one-sided, absolute
    {'target_band': [0.45, 0.5], 'in_band': False, 'band_rule': 'at most 0.5, at least 0.45'}
    """
    if pruner.band is None:
        return {}
    band = pruner.band(options, ratio)
    if band is None:
        return {"target_band": None, "in_band": None, "band_rule": FIXED_SHAPE_RULE}
    return {"target_band": [band.low, band.high], "in_band": band.contains(flop_ratio), "band_rule": band.rule}


@functools.cache
def registered() -> tuple[EntryPoint, ...]:
    """The pruners' entry points, read once per process: a dry run of thousands of runs asks for them per run, and
    each reading scans every installed distribution's metadata (7 ms here)."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def pruner_names() -> list[str]:
    return sorted(ep.name for ep in registered())


def get_pruner(name: str) -> Pruner:
    """The registered pruner `name`; only its own package is imported."""
    found = [ep for ep in registered() if ep.name == name]
    if not found:
        raise choice_error("pruning method", name, pruner_names())
    pruner = found[0].load()
    if not isinstance(pruner, Pruner) or pruner.name != name:
        raise TypeError(f"entry point {found[0].value} must be a Pruner named {name!r}")
    return pruner

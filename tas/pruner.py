"""TAS behind the common pruner interface: search (or draw at random) a shape at the FLOP target, build it fresh.

    tas-bench prune --method tas --network resnet20 --dataset proxy --ratio 0.5 --opt epochs=10 --save tas.pt

The options are `SearchConfig`'s fields (`--opt search=width`, `--opt k=1`, `--opt align=zero-pad`,
`--opt search=random`...). As in the paper, the derived net inherits no weights: it is trained from scratch,
with knowledge distillation from the unpruned net (`tas-bench train --weights tas.pt --teacher unpruned.pt`).
"""

from __future__ import annotations

from pathlib import Path

from tas.random_search import random_arch
from tas.search import SearchConfig, run_search
from tas.search_data import epoch_size
from tas.search_space import check_reachable, search_space
from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flop_target import FlopTarget, at_most
from tasbench.flops import macs
from tasbench.pruner import PruneBudget, Pruned, Pruner, PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed


def prune_tas(request: PruneRequest, options: SearchConfig) -> Pruned:
    if options.search == "random":
        space = search_space(request.arch)
        check_reachable(space, request.ratio, options.search)
        arch, info = random_arch(space, request.ratio, options.flop_tolerance, request.seed)
    else:
        if request.data is None:
            raise ConfigError("TAS searches on training data; the request has none")
        checkpoint = Path(request.workdir) / "tas-search.pt" if request.workdir else None
        result = run_search(
            request.arch,
            request.data,
            options,
            request.ratio,
            seed=request.seed,
            device=request.device,
            checkpoint_path=checkpoint,
            progress=request.progress,
        )
        arch, info = result.arch, {**result.info, "history": result.history}
    model = seeded_resnet(arch, derive_seed(request.seed, "tas-init"))
    return Pruned(arch, model, {**info, "macs": macs(arch), "inherits_weights": False})


def check_tas(arch: Arch, options: SearchConfig, ratio: float) -> None:
    """The net has a search space (full depth, official shortcut) that reaches `ratio` with `options.search`."""
    check_reachable(search_space(arch), ratio, options.search)


# One image through the search net, forward and backward, in plain training passes of the unpruned net: its convs
# at the k=2 sampled widths, the channel-wise interpolation, the Gumbel sampling, the FLOP loss. The stored AMD EPYC
# hot-path baseline (batch 64; docs/benchmarks-and-regression.md): ResNet-20 search step 311 ms for 2 x 64 images,
# plain step 97.8 ms for 64, about 1.59.
SEARCH_PASS_COST = 1.5


def search_budget(options: SearchConfig, train_images: int, test_images: int) -> PruneBudget | None:
    """The search's steps: the training split is halved (`search_data.split_halves`), and each step is one weight
    batch and one architecture batch, both forward and backward through the search net."""
    if options.search == "random":
        return None
    steps, images = epoch_size(train_images, options.batch_size, options.split)
    return PruneBudget(
        f"search {options.epochs} ep x {steps} steps (batch {options.batch_size}/half)",
        options.epochs * images,
        pass_cost=SEARCH_PASS_COST,
    )


def tas_band(options: SearchConfig, ratio: float) -> FlopTarget:
    """[ratio - flop_tolerance, ratio], absolute and one-sided: where the FLOP loss is zero (official `get_flop_loss`
    in `search-shape.py`), and what `select=in-band` and the random search keep to.

    >>> tas_band(SearchConfig(), 0.5)
    FlopTarget(ratio=0.5, low=0.45, high=0.5, rule='at most 0.5, at least 0.45')
    """
    return at_most(ratio, options.flop_tolerance)


PRUNER = Pruner(
    name="tas",
    prune=prune_tas,
    options=SearchConfig,
    needs_data=False,  # the learned search asks through SearchConfig.needs_data; the random one needs none
    summary="TAS: differentiable search of widths and depths under a FLOP loss (Dong & Yang, NeurIPS 2019)",
    check=check_tas,
    budget=search_budget,
    band=tas_band,
)

"""Torch-Pruning (Fang et al., CVPR 2023, "DepGraph") behind the common pruner interface, FLOP-matched on our MACs.

The library does three of the four jobs: its `DependencyGraph` finds which channels are coupled (checked against
`channel_groups.channel_groups`, so a residual chain stays one group), its importance criteria score every channel
of a group (`IMPORTANCES`), and its pruning functions cut the layers. The fourth, how many channels each group
keeps, is ours: Torch-Pruning's `MetaPruner` removes a fraction of the *channels* (`int(n * ratio)` per group, or
that many over all groups with `global_pruning`), which lands anywhere in FLOPs, so here the counts are fitted to
the target on the exact MACs of the `Arch` (`tasbench.flops.macs`), as for L1 and FPGM:

- `allocation="uniform"` (Torch-Pruning's local pruning): every group keeps the same fraction, floored, with
  block-internal convs filled one channel at a time (`flop_match.match_counts`, scope "all"): the very shapes of
  FLOP-matched L1/FPGM with `scope="all"`, so the methods differ only in which channels stay;
- `allocation="global"`: the channels of all groups are ranked together by the library's (per-group normalised)
  importance and removed lowest first, as its `global_pruning`, down to the target; a channel whose removal would
  drop the net below the band is kept (one residual-chain channel can be twice the band) and the walk goes on.

With `steps > 1` the net is pruned progressively (`iterative_steps` in the library): step i of n goes to
1 - (1 - ratio) * i / n of the unpruned FLOPs (global), or a share i / n of the way in channels to the final counts
(uniform, `uniform_schedule`), rescoring the already pruned net each time. The library-pruned module is then
read back into an `Arch` (its conv widths are `xchannels`) and its weights are copied into `build_resnet(arch)`,
which computes the same logits. ResNet-56 at half the FLOPs, group L1 (the shape is L1's with `scope="all"`)::

    >>> out = prune_tp(PruneRequest(resnet56(), seeded_resnet(resnet56(), 0), 0.5), TorchPruningOptions())
    >>> macs(out.arch), out.info["flop_ratio"], out.arch.xchannels[:4]      # 125,747,850 unpruned
    (62317068, 0.4956, (3, 11, 12, 11))
    >>> out.info["kept"]["stages.0.0.convs.0"]
    [1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13, 15]

Torch-Pruning is an optional extra (`pip install -e '.[torch-pruning]'`), imported only where it is used: the
registry imports this module at every start.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import metadata

import torch
import torch.nn.functional as F
from torch import nn

from baselines.channel_groups import (
    ChannelGroup,
    Keep,
    channel_groups,
    keep_from_groups,
    layer_slots,
    pruned_arch,
    slot_convs,
)
from baselines.flop_match import check_matching, keep_best, keep_counts, kept_by_layer, match_counts
from tasbench.arch import Arch, block_specs
from tasbench.bounds import MAX_BATCH, check_fields, int_in
from tasbench.data import ImageData, train_batches
from tasbench.errors import ConfigError, choice_error
from tasbench.flop_target import FlopTarget, relative_band
from tasbench.flops import macs
from tasbench.pruner import PruneBudget, Pruned, Pruner, PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed

# Our name -> (importance class in `torch_pruning.importance`, its arguments). These are the library's own settings
# for each method (its `benchmarks/main.py`): "l1" is its group L1, the mean over every coupled layer (the conv's
# filters, its BN's |gamma|, the next convs' input slices), each group normalised by its mean; "l1-filter" is what
# its `GroupMagnitudeImportance` docstring calls the standard L1 norm of the first layer in a group (PFEC's filter
# norm of the root conv, unnormalised). "group-norm" is not offered: without the sparse training of its
# `GroupNormPruner` it is GroupMagnitudeImportance(p=2), which is "l2" here.
IMPORTANCES = {
    "l1": ("MagnitudeImportance", {"p": 1}),
    "l1-filter": ("MagnitudeImportance", {"p": 1, "group_reduction": "first", "normalizer": None}),
    "l2": ("MagnitudeImportance", {"p": 2}),
    "lamp": ("LAMPImportance", {"p": 2}),
    "bn-scale": ("BNScaleImportance", {}),
    "fpgm": ("FPGMImportance", {"p": 2}),
    "taylor": ("TaylorImportance", {}),
    "hessian": ("HessianImportance", {}),
    "random": ("RandomImportance", {}),
}
NEEDS_GRADIENTS = ("taylor", "hessian")
ALLOCATIONS = ("uniform", "global")
MAX_STEPS = 100
INSTALL = "pip install -e '.[torch-pruning]'"
TRACE_SIZE = {"cifar": 8, "imagenet": 64}  # image side for DepGraph's trace: 2 x 2 before the last stride


@dataclass(frozen=True)
class TorchPruningOptions:
    importance: str = "l1"  # a Torch-Pruning criterion (IMPORTANCES); "taylor"/"hessian" read the training data
    allocation: str = "uniform"  # "uniform": one kept fraction per group; "global": one ranking over all groups
    tolerance: float = 0.01  # accepted relative distance to the target MACs
    steps: int = 1  # progressive pruning: this many prune-and-rescore rounds down to the target
    batches: int = 4  # taylor/hessian: training batches whose gradients score the channels, per step
    batch_size: int = 64  # taylor/hessian

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCES:
            raise choice_error("Torch-Pruning importance", self.importance, list(IMPORTANCES))
        if self.allocation not in ALLOCATIONS:
            raise choice_error("Torch-Pruning allocation", self.allocation, ALLOCATIONS)
        check_matching("all", self.tolerance)
        check_fields(
            self,
            [
                ("steps", int_in(self.steps, 1, MAX_STEPS), f"in [1, {MAX_STEPS}]"),
                ("batches", int_in(self.batches, 1, 10_000), "in [1, 10000]"),
                ("batch_size", int_in(self.batch_size, 1, MAX_BATCH), f"in [1, {MAX_BATCH}]"),
            ],
        )

    @property
    def needs_data(self) -> bool:  # `tasbench.pruner.needs_data`: Taylor and Hessian scores need gradients
        return self.importance in NEEDS_GRADIENTS


def library():
    """The `torch_pruning` module, or a ConfigError saying how to install it."""
    try:
        import torch_pruning
    except ImportError:
        raise ConfigError(f"method 'tp' needs Torch-Pruning; install the extra: {INSTALL}") from None
    return torch_pruning


def check_arch(arch: Arch) -> None:
    if arch.shortcut == "zero-pad":
        # DepGraph takes F.pad for an elementwise op: it couples the padded stage to the unpadded one channel for
        # channel and leaves `ZeroPad.extra` as it was, so the pruned net does not even run.
        raise ConfigError("method 'tp' cannot prune shortcut 'zero-pad' (DepGraph does not follow F.pad of channels)")


def dependency_graph(model: nn.Module, arch: Arch):
    """Torch-Pruning's graph of `model`, traced in eval mode (one forward in train mode would move the BN
    statistics the pruned net inherits)."""
    tp = library()
    was_training = model.training
    device = next(model.parameters()).device
    # The graph depends on the layers, not the map size: trace the smallest image whose maps stay even up to the
    # last stride (a pooled projection's 2x2 pool and a strided 3x3 conv must agree), 8 x 8 on CIFAR instead of 32.
    size = TRACE_SIZE[arch.family]
    example = torch.zeros(1, arch.xchannels[0], size, size, device=device)
    with torch.enable_grad():  # the graph is traced from autograd's grad_fn chain
        graph = tp.DependencyGraph().build_dependency(model.eval(), example_inputs=example)
    model.train(was_training)
    return graph


def library_groups(graph, model: nn.Module, arch: Arch, groups: list[ChannelGroup]) -> list:
    """The library's pruning group of each of our groups (rooted at the conv making its first slot), checked to
    couple the same slots: the library must keep each residual chain whole, as our `Arch` can only express that."""
    tp = library()
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    slots = layer_slots(arch)
    convs = slot_convs(arch)
    out = []
    for g in groups:
        group = graph.get_pruning_group(modules[convs[g.slots[0]]], tp.prune_conv_out_channels, list(g.channels))
        cut = {
            slots[names[id(dep.target.module)]][0]
            for dep, _ in group
            if dep.handler == tp.prune_conv_out_channels and names.get(id(dep.target.module)) in slots
        }
        if cut != set(g.slots):
            raise ConfigError(
                f"Torch-Pruning couples the output slots {sorted(cut)} where tas-bench's residual groups couple "
                f"{list(g.slots)}; this net cannot be converted"
            )
        out.append(group)
    return out


def gradients(model: nn.Module, name: str, data: ImageData, options: TorchPruningOptions, seed: int, step: int):
    """Leave in `.grad` what the library's Taylor or Hessian importance reads, from `options.batches` batches.

    Eval mode throughout: BN then normalises with its running statistics and does not move them (the pruned net
    inherits them). Taylor: the summed loss gradients (`TaylorImportance` scores |w * dw|). Hessian: the mean of
    the squared per-sample gradients, the diagonal Fisher that `HessianImportance` takes for the Hessian (it reads
    `.grad` when it has accumulated nothing). Its own `accumulate_grad` is not used: in 1.6.1 it looks a parameter
    name up in a dict keyed by parameters, so it keeps only the last sample's squared gradient.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    squares = {p: torch.zeros_like(p) for p in model.parameters()}
    samples = 0
    batches = train_batches(data, options.batch_size, seed, step, device)
    for _, (images, labels) in zip(range(options.batches), batches):
        if name == "taylor":
            F.cross_entropy(model(images), labels).backward()
            continue
        for image, label in zip(images, labels):  # batch 1: per-sample gradients (BN is in eval mode)
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(image[None]), label[None]).backward()
            for p in model.parameters():
                squares[p] += p.grad.square()
            samples += 1
    if name == "hessian":
        for p in model.parameters():
            p.grad = squares[p] / max(1, samples)
    model.train(was_training)


def group_scores(model: nn.Module, arch: Arch, groups: list[ChannelGroup], importance: str, seed: int) -> tuple:
    """The library's score of every channel of each group, and its pruning groups, on `model` as it is now."""
    graph = dependency_graph(model, arch)
    found = library_groups(graph, model, arch, groups)
    cls, kwargs = IMPORTANCES[importance]
    scorer = getattr(library().importance, cls)(**kwargs)
    with torch.random.fork_rng(devices=[]):  # RandomImportance draws from the global RNG: seed it, leave it as it was
        torch.manual_seed(seed)
        scores = [scorer(group) for group in found]
    return [s.detach().double().cpu() for s in scores], graph


def global_keep(arch: Arch, groups: list[ChannelGroup], scores: list, ratio: float, tolerance: float) -> Keep:
    """Remove channels lowest score first over all groups (each keeps its best one) down to the target MACs.

    The scores are the library's, normalised per group by its importance (mean, or LAMP's), as its
    `global_pruning` ranks them. A channel is kept, and the walk goes on, where its removal would drop the net below
    the band (one channel of a residual chain is 2% of ResNet-56 in stage 1, twice the band) or cut both sides of a
    stride-1 projection to one width (`stride1_projections`).
    """
    full = macs(arch)
    band = relative_band(ratio, tolerance)
    order = sorted(
        (float(s[i]), gi, i)
        for gi, s in enumerate(scores)
        for i in torch.sort(s, descending=True, stable=True).indices[1:].tolist()  # each group keeps its best
    )
    pairs = stride1_projections(arch, groups)

    def allowed(counts: list[int], gi: int) -> bool:
        return all(counts[b if a == gi else a] != counts[gi] - 1 for a, b in pairs if gi in (a, b))

    def walk(entries: list) -> tuple[list[int], list]:
        counts, taken = [len(g.channels) for g in groups], []
        for entry in entries:
            if allowed(counts, entry[1]):
                counts[entry[1]] -= 1
                taken.append(entry)
        return counts, taken

    def ratio_of(counts: list[int]) -> float:
        return macs(pruned_arch(arch, keep_counts(groups, counts))) / full

    lo, hi = 0, len(order)  # the longest prefix of the ranking that leaves the net above the target
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ratio_of(walk(order[:mid])[0]) > ratio else (lo, mid - 1)
    counts, removed = walk(order[:lo])
    for entry in order[lo:]:
        if ratio_of(counts) <= ratio:
            break
        if not allowed(counts, entry[1]):
            continue
        counts[entry[1]] -= 1
        if ratio_of(counts) >= band.low:
            removed.append(entry)
        else:
            counts[entry[1]] += 1
    if not band.contains(ratio_of(counts)):
        raise ConfigError(
            f"Torch-Pruning's global allocation cannot reach {ratio:.4g} of the FLOPs within {tolerance:.0%} "
            f"(closest: {ratio_of(counts):.4f})"
        )
    gone = {(gi, i) for _, gi, i in removed}
    kept = [[c for i, c in enumerate(g.channels) if (gi, i) not in gone] for gi, g in enumerate(groups)]
    return keep_from_groups(groups, kept)


def stride1_projections(arch: Arch, groups: list[ChannelGroup]) -> list[tuple[int, int]]:
    """(input group, output group) of every stride-1 projection: cut to one width, its block would be an identity
    block, whose shortcut has no weights to inherit (ResNet-164's first block: stem 16 -> 64 channels)."""
    where = {slot: gi for gi, g in enumerate(groups) for slot in g.slots}
    pairs, in_slot = [], 1
    for spec in block_specs(arch):
        out_slot = spec.first_conv + len(spec.widths) - 1
        if spec.shortcut == "projection" and spec.stride == 1:
            pairs.append((where[in_slot], where[out_slot]))
        in_slot = out_slot
    return pairs


def prune_step(
    model: nn.Module,
    arch: Arch,
    goal: list[int] | float,
    options: TorchPruningOptions,
    request: PruneRequest,
    step: int,
) -> Keep:
    """One round in place: score `model` (of shape `arch`), keep `goal` (uniform: channels per group of
    `channel_groups(arch)`; global: a share of macs(arch)), cut the rest with the library. Returns the kept
    positions of every slot."""
    groups = channel_groups(arch)
    if options.importance in NEEDS_GRADIENTS:
        if request.data is None:
            raise ConfigError(f"Torch-Pruning importance {options.importance!r} scores by gradients and needs data")
        gradients(model, options.importance, request.data, options, request.seed, step)
    scores, graph = group_scores(model, arch, groups, options.importance, derive_seed(request.seed, "tp", step))
    model.zero_grad(set_to_none=True)
    if options.allocation == "uniform":
        keep = keep_best(groups, scores, goal)
    else:
        keep = global_keep(arch, groups, scores, goal, options.tolerance)
    tp = library()
    modules = dict(model.named_modules())
    convs = slot_convs(arch)
    for g in groups:  # a group's output channels are no other group's, so each cut leaves the others' indices valid
        kept = set(keep.get(g.slots[0], g.channels))
        removed = [c for c in g.channels if c not in kept]
        if removed:
            graph.get_pruning_group(modules[convs[g.slots[0]]], tp.prune_conv_out_channels, removed).prune()
    return keep


def uniform_schedule(arch: Arch, ratio: float, options: TorchPruningOptions) -> list[list[int]]:
    """Channels per group after each step: the FLOP-matched counts at the last, linear in channels before it (as
    the library's `iterative_steps` schedule the channel ratio). ResNet-20 at 0.5 in 2 steps, the stem's chain: 16,
    then 13, then 11 (only the last step has to lie in the band: a uniform step of a few % of the FLOPs does not
    exist, one channel off each residual chain of ResNet-56 is 3.7% of it)."""
    groups = channel_groups(arch)
    final, _ = match_counts(arch, groups, ratio, options.tolerance, "all", "Torch-Pruning")
    n = options.steps
    return [[k + (len(g.channels) - k) * (n - i) // n for g, k in zip(groups, final)] for i in range(1, n + 1)]


def library_prune(request: PruneRequest, options: TorchPruningOptions) -> tuple[nn.Module, dict, list[float]]:
    """A copy of `request.model` cut by the library to `request.ratio` of the FLOPs in `options.steps` rounds, the
    original channel index of every position still there (per slot), and the FLOP ratio after each round."""
    arch = request.arch
    check_arch(arch)
    library()  # before the copy: a missing library is one line, at once
    full = macs(arch)
    model = copy.deepcopy(request.model)  # the library cuts in place; the caller's net stays as it was
    model.requires_grad_(True)  # DepGraph traces autograd's graph, which a frozen net (a teacher) does not build
    schedule = uniform_schedule(arch, request.ratio, options) if options.allocation == "uniform" else None
    current = arch
    alive = {slot: list(range(w)) for slot, w in enumerate(arch.xchannels)}
    history = []
    for step in range(1, options.steps + 1):
        if schedule is not None:
            goal = schedule[step - 1]
        else:
            target = 1 - (1 - request.ratio) * step / options.steps  # of the unpruned FLOPs
            goal = target * full / macs(current)  # of the current net's
            if step < options.steps and relative_band(goal, options.tolerance).contains(1.0):
                continue  # already there
        keep = prune_step(model, current, goal, options, request, step)
        alive = {slot: [alive[slot][i] for i in keep.get(slot, range(len(alive[slot])))] for slot in alive}
        current = module_arch(model, arch)
        history.append(round(macs(current) / full, 4))
    return model, alive, history


def module_arch(model: nn.Module, arch: Arch) -> Arch:
    """The `Arch` of a library-pruned net whose unpruned shape was `arch`: each slot's width is its conv's."""
    modules = dict(model.named_modules())
    widths = list(arch.xchannels)
    for slot, name in slot_convs(arch).items():
        widths[slot] = modules[name].out_channels
    return arch.replace(xchannels=tuple(widths))


def to_resnet(model: nn.Module, arch: Arch) -> tuple[Arch, nn.Module, list[str]]:
    """`build_resnet` of the library-pruned `model`'s shape (unpruned: `arch`), holding its weights; and the names of
    the tensors it has no place for.

    Those are only the BN of ResNet-164's stride-1 projection, which the release's pruned nets do not have
    (`tasbench.arch.projection_has_bn`): dropped, as `slice_resnet` drops it, so there the logits differ by that
    BN's affine map. Any other mismatch means the library made a net our `Arch` cannot express: a ConfigError.
    """
    new_arch = module_arch(model, arch)
    if [s.shortcut for s in block_specs(new_arch)] != [s.shortcut for s in block_specs(arch)]:
        raise ConfigError(
            "Torch-Pruning cut a projection's two sides to the same width: the block would need an identity "
            "shortcut, which holds no weights to inherit"
        )
    new = seeded_resnet(new_arch, 0)  # every tensor is overwritten below; the seed only spares the global RNG
    want, have = new.state_dict(), model.state_dict()
    dropped = sorted({k.rpartition(".")[0] for k in set(have) - set(want)})
    if set(want) - set(have) or any(not k.endswith("shortcut.bn") for k in dropped):
        raise ConfigError(f"the Torch-Pruning net does not map onto build_resnet: {sorted(set(want) ^ set(have))}")
    for key, value in want.items():
        if have[key].shape != value.shape:
            raise ConfigError(
                f"the Torch-Pruning net's {key} is {tuple(have[key].shape)}, its Arch needs {tuple(value.shape)}"
            )
    new.load_state_dict({k: have[k] for k in want})
    device = next(model.parameters()).device
    return new_arch, new.to(device).train(model.training), dropped


def prune_tp(request: PruneRequest, options: TorchPruningOptions) -> Pruned:
    """Prune a copy of `request.model` with Torch-Pruning to `request.ratio` of the FLOPs, in `options.steps`."""
    arch = request.arch
    model, alive, history = library_prune(request, options)
    new_arch, pruned, dropped = to_resnet(model, arch)
    kept = {slot: alive[slot] for slot in alive if len(alive[slot]) < arch.xchannels[slot]}
    info = {
        "importance": options.importance,
        "allocation": options.allocation,
        "steps": options.steps,
        "flop_ratio": round(macs(new_arch) / macs(arch), 4),
        "flop_ratio_per_step": history,
        # The wheel's own `__version__` lags its release (1.6.1 says "1.6.0"); its distribution metadata does not.
        "library": f"torch-pruning {metadata.version('torch-pruning')}",
        "kept": kept_by_layer(arch, kept),
        "dropped": dropped,
        "inherits_weights": True,
    }
    return Pruned(new_arch, pruned, info)


def check_tp(arch: Arch, options: TorchPruningOptions, ratio: float) -> None:
    """The library is installed, DepGraph can follow the net, and the target can be reached (counts only)."""
    library()
    check_arch(arch)
    groups = channel_groups(arch)
    if options.allocation == "uniform":
        match_counts(arch, groups, ratio, options.tolerance, "all", "Torch-Pruning")
        return
    smallest = macs(pruned_arch(arch, keep_counts(groups, [1] * len(groups)))) / macs(arch)  # one channel a group
    if smallest > relative_band(ratio, options.tolerance).high:
        raise ConfigError(f"FLOP ratio {ratio} is below what Torch-Pruning's global allocation reaches")


def tp_budget(options: TorchPruningOptions, train_images: int, test_images: int) -> PruneBudget | None:
    """Taylor and Hessian scores pass `batches` x `batch_size` training images forward and backward, per step."""
    if not options.needs_data:
        return None
    images = options.steps * options.batches * options.batch_size
    return PruneBudget(f"{options.importance} scores: {options.steps} x {options.batches} batches", images)


def tp_band(options: TorchPruningOptions, ratio: float) -> FlopTarget:
    """Within the relative tolerance of `ratio`, either side, as FLOP-matched L1 and FPGM."""
    return relative_band(ratio, options.tolerance)


PRUNER = Pruner(
    name="tp",
    prune=prune_tp,
    options=TorchPruningOptions,
    needs_data=False,  # the magnitude criteria; Taylor and Hessian ask through TorchPruningOptions.needs_data
    reads_weights=True,  # channels are scored by the unpruned net's trained weights
    summary="Torch-Pruning (DepGraph) criteria: L1/L2/LAMP/BN-scale/FPGM/Taylor/Hessian/random, FLOP-matched",
    check=check_tp,
    budget=tp_budget,
    band=tp_band,
)

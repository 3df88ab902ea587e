"""What every baseline pruner (L1-norm, FPGM) must do: hit a FLOP target within 1%, keep residual groups whole,
keep the best channels of each group by its own score, and return a really smaller, consistently sliced net."""

import pytest
import torch

from baselines.channel_groups import channel_groups, slot_convs
from baselines.flop_match import group_scores
from baselines.fpgm import distance_sums
from baselines.l1_norm import l1_scores
from tasbench.errors import ConfigError
from tasbench.flops import count_macs, macs
from tasbench.presets import resnet20, resnet56, resnet164
from tasbench.pruner import PruneRequest, get_pruner
from tasbench.resnet import seeded_resnet

from helpers import tiny_arch, tiny_bottleneck

METHODS = {"l1": l1_scores, "fpgm": distance_sums}
NETWORKS = {
    "tiny": tiny_arch(),
    "tiny-bottleneck": tiny_bottleneck(),
    "resnet20-zero-pad": resnet20(shortcut="zero-pad"),
    "resnet56": resnet56(),
    "resnet164": resnet164(),
}
RATIOS = [0.3, 0.5, 0.7]
_MODELS: dict[str, torch.nn.Module] = {}


def unpruned(name: str) -> torch.nn.Module:
    if name not in _MODELS:  # built once per network: resnet164 takes a moment
        _MODELS[name] = seeded_resnet(NETWORKS[name], 0)
    return _MODELS[name]


def prune(method: str, name: str, ratio: float, **options):
    pruner = get_pruner(method)
    return pruner.prune(PruneRequest(NETWORKS[name], unpruned(name), ratio), pruner.options(**options))


def kept_per_slot(arch, info) -> dict[int, list[int]]:
    by_name = {name: slot for slot, name in slot_convs(arch).items()}
    return {by_name[name]: kept for name, kept in info["kept"].items()}


@pytest.mark.parametrize("scope", ["internal", "all"])
@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("method", METHODS)
def test_flop_matched_nets_land_within_one_percent(method, name, scope):
    full = NETWORKS[name]
    for ratio in RATIOS:
        out = prune(method, name, ratio, scope=scope)
        assert abs(macs(out.arch) / (ratio * macs(full)) - 1) <= 0.01, (ratio, macs(out.arch))
        if ratio == 0.5:  # counted on the built, sliced module (once per net: a forward pass of ResNet-164 costs)
            assert sum(count_macs(out.model, 32).values()) == macs(out.arch)
        assert out.info["inherits_weights"] is True


@pytest.mark.parametrize("name", ["tiny", "tiny-bottleneck", "resnet20-zero-pad"])
@pytest.mark.parametrize("method", METHODS)
def test_groups_stay_whole_and_keep_their_best_channels(method, name):
    arch = NETWORKS[name]
    out = prune(method, name, 0.4, scope="all")
    kept = kept_per_slot(arch, out.info)
    groups = channel_groups(arch)
    for group, score in zip(groups, group_scores(unpruned(name), arch, groups, METHODS[method])):
        per_slot = [sorted(set(kept.get(s, range(arch.xchannels[s]))) & set(group.channels)) for s in group.slots]
        assert all(k == per_slot[0] for k in per_slot), group.slots  # a residual group is never split
        index = {c: i for i, c in enumerate(group.channels)}
        kept_scores = [score[index[c]] for c in per_slot[0]]
        removed = [score[index[c]] for c in group.channels if c not in per_slot[0]]
        assert not removed or min(kept_scores) >= max(removed), group.slots


@pytest.mark.parametrize("method", METHODS)
def test_an_unreachable_ratio_is_named(method):
    with pytest.raises(ConfigError, match=r"FLOP ratio 0.001 is below what .* pruning \(scope 'internal'\) reaches"):
        prune(method, "tiny", 0.001, scope="internal")


@pytest.mark.parametrize("method", METHODS)
def test_bad_options_are_named(method):
    with pytest.raises(ConfigError, match="unknown scope 'some'; allowed: internal, all"):
        get_pruner(method).options(scope="some")
    with pytest.raises(ConfigError, match="tolerance must be in"):
        get_pruner(method).options(tolerance=0.0)

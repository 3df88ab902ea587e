"""The Torch-Pruning adapter `tp` (baselines/torch_pruning.py): the library-pruned net converts to an `Arch` with the
same logits, its MACs land in the band, and its L1 keeps the channels our L1 keeps wherever both score alike."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch_pruning")

import torch  # noqa: E402

from baselines.channel_groups import channel_groups, pruned_arch, slot_convs  # noqa: E402
from baselines.flop_match import keep_counts, match_counts  # noqa: E402
from baselines.l1_norm import L1Options, prune_l1  # noqa: E402
from baselines.torch_pruning import (  # noqa: E402
    IMPORTANCES,
    TorchPruningOptions,
    check_tp,
    library_prune,
    prune_tp,
    to_resnet,
)
from tasbench.data import DataConfig, load_data  # noqa: E402
from tasbench.errors import ConfigError  # noqa: E402
from tasbench.flops import macs  # noqa: E402
from tasbench.presets import PRESETS  # noqa: E402
from tasbench.pruner import PruneRequest, get_pruner, needs_data  # noqa: E402
from tasbench.resnet import seeded_resnet  # noqa: E402

# On 2 cores shared with other jobs, 2 torch threads spin-wait on each other (conftest.py's `one_thread`).
pytestmark = pytest.mark.usefixtures("one_thread")


def trained_like(arch, seed: int) -> torch.nn.Module:
    """A seeded net with the spread a trained one has: filters of unequal norm, BN affine maps and statistics that
    are not the identity (a fresh net's BNs are, and then every BN-based score ties)."""
    net = seeded_resnet(arch, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight *= 0.25 + 1.5 * torch.rand(m.out_channels, 1, 1, 1, generator=g)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.2 + 1.3 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
    return net.eval()


def images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("preset", ["resnet20", "resnet56", "resnet164"])
@pytest.mark.parametrize("allocation", ["uniform", "global"])
def test_the_library_pruned_net_and_its_arch_give_the_same_logits(preset, allocation):
    arch = PRESETS[preset]()
    net = trained_like(arch, 0)
    if preset == "resnet164":
        # The one tensor our pruned ResNet-164 has no place for is the BN of its stride-1 projection (the release's
        # pruned nets have none; `to_resnet` drops it as `slice_resnet` does). Made the identity here, dropping it
        # changes nothing, so the logits must agree exactly there too.
        bn = net.stages[0][0].shortcut.bn
        with torch.no_grad():
            bn.weight.fill_(1), bn.bias.zero_(), bn.running_mean.zero_(), bn.running_var.fill_(1 - bn.eps)
    pruned, _, _ = library_prune(PruneRequest(arch, net, 0.5), TorchPruningOptions(allocation=allocation))
    new_arch, ours, dropped = to_resnet(pruned, arch)
    assert dropped == (["stages.0.0.shortcut.bn"] if preset == "resnet164" else [])
    assert macs(new_arch) < macs(arch) and new_arch.xchannels != arch.xchannels
    with torch.no_grad():
        x = images()
        library_logits, our_logits, full_logits = pruned.eval()(x), ours.eval()(x), net(x)
    assert torch.allclose(library_logits, our_logits, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(library_logits, full_logits, atol=1e-3)  # pruning changed the net


def test_prune_leaves_the_callers_net_unchanged_and_reports_json():
    arch = PRESETS["resnet20"]()
    net = trained_like(arch, 0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = prune_tp(PruneRequest(arch, net, 0.5), TorchPruningOptions())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not out.model.training  # as the caller's net (eval)
    assert out.info["library"].startswith("torch-pruning 1.") and out.info["importance"] == "l1"
    assert set(out.info["kept"]) <= set(slot_convs(arch).values()) and out.info["flop_ratio"] == 0.4965
    json.dumps(out.info, allow_nan=False)


@pytest.mark.parametrize("importance", ["l1", "lamp"])
@pytest.mark.parametrize("allocation", ["uniform", "global"])
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_resnet56_lands_within_1_percent_of_the_flop_ratio(importance, allocation, ratio):
    arch = PRESETS["resnet56"]()
    out = prune_tp(PruneRequest(arch, trained_like(arch, 0), ratio), TorchPruningOptions(importance, allocation))
    reached = macs(out.arch) / macs(arch)
    print(f"tp {importance} {allocation} {ratio}: {reached:.4f}")
    assert abs(reached - ratio) <= 0.01 * ratio
    if allocation == "uniform":  # the shape of FLOP-matched L1/FPGM with scope="all", whatever the scores
        groups = channel_groups(arch)
        counts, _ = match_counts(arch, groups, ratio, 0.01, "all", "L1")
        assert out.arch == pruned_arch(arch, keep_counts(groups, counts))


def test_progressive_pruning_steps_down_to_the_target():
    arch = PRESETS["resnet56"]()
    net = trained_like(arch, 0)
    out = prune_tp(PruneRequest(arch, net, 0.5), TorchPruningOptions(steps=3, allocation="global"))
    steps = out.info["flop_ratio_per_step"]
    assert len(steps) == 3 and steps[0] > steps[1] > steps[2] == out.info["flop_ratio"]
    for target, reached in zip([5 / 6, 2 / 3, 0.5], steps):  # global: each step is FLOP-matched
        assert abs(reached - target) <= 0.01 * target + 1e-4  # 1e-4: the recorded ratios are rounded
    one = prune_tp(PruneRequest(arch, net, 0.5), TorchPruningOptions())
    out = prune_tp(PruneRequest(arch, net, 0.5), TorchPruningOptions(steps=3))
    # uniform: the same final shape in 3 steps (linear in channels before the last), other channels
    assert out.arch == one.arch and out.info["kept"] != one.info["kept"]
    assert out.info["flop_ratio_per_step"] == [0.7757, 0.6189, 0.4956]
    # A 10% cut in 10 steps: no uniform step of 1% of the FLOPs exists (one channel off each residual chain is 3.7% of
    # ResNet-56), so the steps go linearly in channels to the FLOP-matched shape.
    assert prune_tp(PruneRequest(arch, net, 0.9), TorchPruningOptions(steps=10)).info["flop_ratio"] == 0.8931


def test_global_allocation_keeps_a_stride1_projection_a_projection():
    # The library's filter L1 is not normalised, and the stem's filters (27 weights each) are the lightest of all:
    # a global ranking would cut the stem's chain to the width of the first block's output, 16 -> 64 at full width,
    # and that block would need an identity shortcut. Such a removal is skipped.
    arch = PRESETS["resnet164"]()
    out = prune_tp(PruneRequest(arch, trained_like(arch, 1), 0.3), TorchPruningOptions("l1-filter", "global"))
    assert abs(out.info["flop_ratio"] - 0.3) <= 0.003 and out.arch.xchannels[1] != out.arch.xchannels[4]


def test_random_importance_is_a_function_of_the_seed():
    arch = PRESETS["resnet20"]()
    net = trained_like(arch, 0)
    options = TorchPruningOptions(importance="random")
    state = torch.random.get_rng_state()
    kept = [prune_tp(PruneRequest(arch, net, 0.5, seed=seed), options).info["kept"] for seed in (0, 0, 1)]
    assert kept[0] == kept[1] != kept[2]
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left as it was


@pytest.mark.parametrize("importance", ["taylor", "hessian"])
def test_gradient_criteria_read_the_data(importance):
    pruner = get_pruner("tp")
    options = TorchPruningOptions(importance=importance, batches=1, batch_size=16)
    assert needs_data(pruner, options) and not needs_data(pruner, TorchPruningOptions())
    arch = PRESETS["resnet20"]()
    net = trained_like(arch, 0)
    with pytest.raises(ConfigError, match=f"^Torch-Pruning importance '{importance}' scores by gradients"):
        prune_tp(PruneRequest(arch, net, 0.5), options)
    data = load_data(DataConfig("proxy", proxy_train=64, proxy_test=16))
    out = prune_tp(PruneRequest(arch, net, 0.5, data=data), options)
    assert pruner.band(options, 0.5).contains(macs(out.arch) / macs(arch))
    assert all(p.grad is None for p in out.model.parameters()) and all(p.grad is None for p in net.parameters())
    assert pruner.budget(options, 50_000, 10_000).train_images == 16


# Where the two L1s keep the same channels. Both keep the same number per group (the uniform allocation *is*
# `match_counts` with scope "all"), so only the scores differ:
# - "l1-filter" (the library's "standard L1-norm of the first layer in a group") scores a block-internal conv by
#   its filters' L1 norm alone, exactly as `l1_scores`: every internal group agrees channel for channel. On a
#   residual chain it scores the root conv only (the stem, or the stage's first block's last conv), where ours sums
#   the L1 norms of every conv writing into the chain: those keep partly different channels.
# - "l1" (the library's default group L1) takes the mean over every layer of the group: the conv's filters, its
#   BN's |gamma| and the input slices of the convs that read it, which our filter L1 never looks at, so it keeps
#   partly different channels in internal groups too.
AGREEMENT = {
    # importance: (internal channels kept, of them agreed; chain channels kept, of them agreed), ResNet-56 at 0.5
    "l1-filter": ((712, 712), (78, 60)),
    "l1": ((712, 698), (78, 77)),
}


def agreement_table(importance: str) -> list[tuple[str, int, int, int]]:
    """(group, its channels, kept, kept by both) per channel group of ResNet-56 at half the FLOPs."""
    arch = PRESETS["resnet56"]()
    net = trained_like(arch, 0)
    ours = prune_l1(PruneRequest(arch, net, 0.5), L1Options(scope="all")).info["kept"]
    theirs = prune_tp(PruneRequest(arch, net, 0.5), TorchPruningOptions(importance=importance)).info["kept"]
    convs = slot_convs(arch)
    rows = []
    for g in channel_groups(arch):
        name = convs[g.slots[0]]
        kept_ours, kept_theirs = set(ours.get(name, g.channels)), set(theirs.get(name, g.channels))
        assert len(kept_ours) == len(kept_theirs)
        label = name if g.internal else f"chain of {name} ({len(g.slots)} slots)"
        rows.append((label, len(g.channels), len(kept_ours), len(kept_ours & kept_theirs)))
    return rows


@pytest.mark.parametrize("importance", sorted(AGREEMENT))
def test_torch_pruning_l1_against_our_l1(importance):
    rows = agreement_table(importance)
    print(f"\nours L1 (scope=all) vs tp {importance}, ResNet-56 at 0.5\ngroup, channels, kept, agreed")
    for row in rows:
        print(", ".join(map(str, row)))
    internal = [r for r in rows if not r[0].startswith("chain")]
    chains = [r for r in rows if r[0].startswith("chain")]
    totals = tuple((sum(r[2] for r in part), sum(r[3] for r in part)) for part in (internal, chains))
    assert totals == AGREEMENT[importance]
    if importance == "l1-filter":
        assert all(kept == agreed for _, _, kept, agreed in internal)


BAD_OPTIONS = [
    ({"importance": "l0"}, "unknown Torch-Pruning importance 'l0'; allowed: " + ", ".join(IMPORTANCES)),
    ({"importance": "group-norm"}, "unknown Torch-Pruning importance 'group-norm'; allowed: l1, "),
    ({"allocation": "local"}, "unknown Torch-Pruning allocation 'local'; allowed: uniform, global"),
    ({"tolerance": 0.5}, "tolerance must be in (0, 0.5), got 0.5"),
    ({"tolerance": float("nan")}, "tolerance must be in (0, 0.5), got nan"),
    ({"steps": 0}, "steps must be in [1, 100], got 0"),
    ({"batches": 0}, "batches must be in [1, 10000], got 0"),
    ({"batch_size": 10**6}, "batch_size must be in [1, 65536], got 1000000"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS, ids=[next(iter(o)) for o, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_naming_the_value(options, message):
    with pytest.raises(ConfigError) as error:
        TorchPruningOptions(**options)
    text = str(error.value)
    assert "\n" not in text and text.startswith(message) and str(next(iter(options.values()))) in text


def test_nets_and_targets_it_cannot_prune_are_refused_before_pruning():
    with pytest.raises(ConfigError, match="^method 'tp' cannot prune shortcut 'zero-pad'"):
        check_tp(PRESETS["resnet20"](shortcut="zero-pad"), TorchPruningOptions(), 0.5)
    with pytest.raises(ConfigError, match="^FLOP ratio 0.001 is below what"):
        check_tp(PRESETS["resnet20"](), TorchPruningOptions(), 0.001)
    with pytest.raises(ConfigError, match="^FLOP ratio 0.001 is below what Torch-Pruning's global allocation"):
        check_tp(PRESETS["resnet20"](), TorchPruningOptions(allocation="global"), 0.001)


def test_without_the_library_the_module_imports_and_the_method_says_how_to_install_it():
    code = (
        "import sys; sys.modules['torch_pruning'] = None\n"  # as if it were not installed
        "import baselines.torch_pruning as m\n"
        "from tasbench.presets import resnet20\n"
        "try:\n    m.check_tp(resnet20(), m.TorchPruningOptions(), 0.5)\n"
        "except m.ConfigError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "method 'tp' needs Torch-Pruning; install the extra: pip install -e '.[torch-pruning]'\n"

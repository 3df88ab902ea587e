"""TAS search space, CWI, Gumbel sampling, expected FLOPs: exact values against the reference notes and the engine."""

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

from tas.channel_interp import align, align_matrix, cwi
from tas.flop_loss import ExpectedFlops, flop_loss
from tas.gumbel import sample_top_k
from tas.search_model import SearchResNet
from tas.search_space import choices, depth_candidates, derive, search_space, smallest_ratio, width_candidates
from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flops import count_macs, macs
from tasbench.presets import PRESETS, resnet20, resnet56
from tasbench.resnet import build_resnet


def test_width_candidates_match_the_reference_notes():
    assert width_candidates(16) == (4, 6, 8, 9, 11, 12, 14, 16)
    assert width_candidates(32) == (9, 12, 16, 19, 22, 25, 28, 32)
    assert width_candidates(64) == (19, 25, 32, 38, 44, 51, 57, 64)
    assert width_candidates(4) == (1, 2, 3, 4)  # de-duplicated
    assert width_candidates(1) == (1,)


@pytest.mark.parametrize(
    "name, depths, rows",
    [
        ("resnet20", ((1, 2, 3),) * 3, 19),
        ("resnet32", ((1, 3, 5),) * 3, 31),
        ("resnet56", ((1, 3, 5, 7, 9),) * 3, 55),
        ("resnet110", ((1, 3, 5, 7, 9, 11, 13, 15, 17, 18),) * 3, 109),
        ("resnet164", ((1, 3, 5, 7, 9, 11, 13, 15, 17, 18),) * 3, 163),
        ("resnet18", ((1, 2),) * 4, 17),
        ("resnet50", ((1, 2, 3), (1, 2, 4), (2, 4, 6), (1, 2, 3)), 49),
    ],
)
def test_depth_candidates_and_width_rows(name, depths, rows):
    space = search_space(PRESETS[name]())
    assert space.depths == depths
    assert space.rows == rows
    assert depth_candidates(space.arch.family, space.arch.layers) == depths


def test_space_refuses_pruned_or_zero_pad_nets():
    with pytest.raises(ConfigError, match="zero-pad"):
        search_space(resnet56(shortcut="zero-pad"))
    with pytest.raises(ConfigError, match="full-depth"):
        search_space(resnet20().replace(xblocks=(1, 3, 3)))


def test_derive_fills_xchannels_and_xblocks():
    space = search_space(resnet20())
    arch = derive(space, [0] + [7] * 18, [2, 1, 0])
    assert arch.xchannels[:3] == (3, 4, 16) and arch.xblocks == (3, 2, 1)
    assert smallest_ratio(space) == macs(derive(space, [0] * 19, [0, 0, 0])) / macs(resnet20())


# ---- channel-wise interpolation --------------------------------------------------------------------------------


def test_cwi_hand_checked_example():
    x = torch.tensor([1.0, 3.0, 8.0]).view(1, 3, 1, 1)
    # Windows of adaptive pooling 3 -> 4: {0}, {0, 1}, {1, 2}, {2}; 3 -> 5: {0}, {0,1}, {1}, {1,2}, {2}.
    assert cwi(x, 4).flatten().tolist() == [1.0, 2.0, 5.5, 8.0]
    assert cwi(x, 5).flatten().tolist() == [1.0, 2.0, 3.0, 5.5, 8.0]
    assert cwi(x, 3) is x
    assert cwi(torch.randn(2, 5, 4, 3), 9).shape == (2, 9, 4, 3)


def test_align_equals_cwi_for_every_growth_up_to_24_channels():
    g = torch.Generator().manual_seed(0)
    for c in range(1, 25):
        for m in range(c, 25):
            x = torch.randn(2, c, 3, 3, generator=g)
            assert torch.equal(align(x, c, m), cwi(x, m)), (c, m)
            # static shapes: tensor widths inside a 30-wide zero-padded map
            padded = F.pad(x, (0, 0, 0, 0, 0, 30 - c))
            out = align(padded, torch.tensor(c), torch.tensor(m))
            assert torch.equal(out[:, :m], cwi(x, m)) and not out[:, m:].any()
            matrix = align_matrix(c, m, m)
            assert torch.allclose(torch.einsum("ji,bihw->bjhw", matrix, F.pad(x, (0, 0, 0, 0, 0, m - c))), cwi(x, m))


def test_zero_pad_alignment_is_the_no_cwi_ablation():
    x = torch.arange(1.0, 4.0).view(1, 3, 1, 1)
    assert align(x, 3, 5, mode="zero-pad").flatten().tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]
    assert align_matrix(3, 5, 5, "zero-pad").tolist()[3] == [0.0] * 5


# ---- Gumbel sampling -------------------------------------------------------------------------------------------


def test_top_k_samples_distinct_real_candidates_with_normalised_weights():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 8, generator=g)
    logits[:, 6:] = float("-inf")  # rows with 6 real candidates
    index, weight = sample_top_k(logits, 1.0, 2, g)
    assert index.shape == (50, 2) and (index[:, 0] != index[:, 1]).all() and (index < 6).all()
    assert torch.allclose(weight.sum(1), torch.ones(50))
    index, weight = sample_top_k(logits, 1.0, 1, g)
    assert (weight == 1).all()


def test_top_k_draws_like_multinomial_without_replacement():
    # The first of the two picks is distributed as softmax(log_softmax(l) + Gumbel) / tau averaged over the noise;
    # at large tau that is close to uniform, at tau -> 0 it is softmax(l) itself. Check the first pick's frequency
    # against torch.multinomial on the same perturbed probabilities (the official sampler), seeded.
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(20000, 4)
    g = torch.Generator().manual_seed(1)
    index, _ = sample_top_k(logits, 1.0, 2, g)
    ours = torch.bincount(index[:, 0], minlength=4).float() / len(index)
    g = torch.Generator().manual_seed(2)
    gumbel = -torch.empty_like(logits).exponential_(generator=g).log()
    probs = ((logits.log_softmax(1) + gumbel) / 1.0).softmax(1)
    official = torch.multinomial(probs, 2, replacement=False, generator=g)
    theirs = torch.bincount(official[:, 0], minlength=4).float() / len(official)
    assert (ours - theirs).abs().max() < 0.02, (ours, theirs)


# ---- expected FLOPs ----------------------------------------------------------------------------------------------


def one_hot(index: list[int], n: int) -> torch.Tensor:
    return F.one_hot(torch.tensor(index), n).double()


@pytest.mark.parametrize("name", list(PRESETS))
def test_one_hot_expected_flops_equal_the_engine_count(name):
    """flop_count=exact: for one-hot probabilities, the expected and current FLOPs are the built net's MACs (the
    official count is checked against the release's own figures in `test_official_oracle.py`)."""
    space = search_space(PRESETS[name]())
    flops = ExpectedFlops(space, "exact")
    rng = random.Random(name)
    for _ in range(10):
        w = [rng.randrange(len(c)) for c in space.widths]
        d = [rng.randrange(len(c)) for c in space.depths]
        value = flops(one_hot(w, space.max_width_candidates), one_hot(d, space.max_depth_candidates))
        assert value.item() == flops.current(torch.tensor(w), torch.tensor(d)).item() == macs(derive(space, w, d))
        assert choices(space, derive(space, w, d)) == (w, d)


def test_expected_flops_are_the_exact_expectation_of_the_engine_count():
    """Enumerate every net of a small space (2 live candidates per conv, 2 depths per stage) and average macs()."""
    arch = Arch("cifar", "basic", (2, 1, 1), (2, 1, 1), (3, 8, 8, 8, 8, 8, 16, 16, 32, 32), 10)
    space = search_space(arch)
    flops = ExpectedFlops(space, "exact")
    g = torch.Generator().manual_seed(0)
    live = [(1, len(c) - 1) for c in space.widths]  # two candidates per row carry all the probability
    wp = torch.zeros(space.rows, space.max_width_candidates, dtype=torch.float64)
    for r, (a, b) in enumerate(live):
        p = torch.rand((), generator=g, dtype=torch.float64)
        wp[r, a], wp[r, b] = p, 1 - p
    dp = torch.zeros(3, space.max_depth_candidates, dtype=torch.float64)
    dp[0, :2] = torch.tensor([0.3, 0.7], dtype=torch.float64)
    dp[1:, 0] = 1
    expected = 0.0
    for choice in itertools.product(*live):
        p_w = torch.prod(torch.stack([wp[r, i] for r, i in enumerate(choice)])).item()
        for depth, p_d in ((0, 0.3), (1, 0.7)):
            expected += p_w * p_d * macs(derive(space, list(choice), [depth, 0, 0]))
    assert flops(wp, dp).item() == pytest.approx(expected, rel=1e-12)


def test_flop_loss_grows_shrinks_or_rests():
    e = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)
    log_e = torch.log(torch.tensor(50.0, dtype=torch.float64))
    assert flop_loss(e, torch.tensor(60.0), target=55, tolerance=5) == log_e  # above target: shrink
    assert flop_loss(e, torch.tensor(49.0), target=55, tolerance=5) == -log_e  # below target - tolerance: grow
    assert flop_loss(e, torch.tensor(52.0), target=55, tolerance=5) == 0  # inside the band
    assert flop_loss(e, torch.tensor(55.0), target=55, tolerance=5) == 0


def test_hand_set_logits_derive_the_arch_the_engine_builds_and_counts():
    """Logits favouring known widths and depths: derived Arch, its counted MACs and the search's FLOPs (counted
    exactly) all agree; the release's count of the same net differs by what it leaves out, worked out by hand."""
    space = search_space(resnet20())
    model = SearchResNet(space, flop_count="exact")
    widths = [2, 0, 7, 3, 7, 5, 7, 1, 6, 2, 6, 4, 6, 0, 5, 3, 5, 7, 5]  # candidate index per conv row
    depths = [2, 0, 1]  # 3, 1 and 2 blocks
    with torch.no_grad():
        model.width_logits.fill_(0).scatter_(1, torch.tensor(widths).view(-1, 1), 60.0)
        model.depth_logits.fill_(0).scatter_(1, torch.tensor(depths).view(-1, 1), 60.0)
    arch = model.derive()
    assert arch.xblocks == (3, 1, 2)
    assert arch.xchannels == (3, 8, 4, 16, 9, 16, 12, 16, 12, 28, 16, 28, 22, 28, 19, 51, 38, 51, 64, 51)
    counted = sum(count_macs(build_resnet(arch), 32).values())
    assert counted == macs(arch)
    assert model.argmax_flops().item() == counted
    assert model.expected_flops().item() == pytest.approx(counted, rel=1e-12)  # softmax(60 vs 0) is 1 - 7e-26
    official = SearchResNet(space, flop_count="official")
    official.load_state_dict(model.state_dict())
    # The release's count of the same net: no classifier bias (10 MACs), and its expected FLOPs leave out the one
    # projection a width mismatch creates (stage 1's first block maps the stem's 8 channels to 16, at 32 x 32). The
    # dropped blocks end with the widths the kept ones end with (16, 28, 51), so the stage boundaries agree here.
    assert official.argmax_flops().item() == counted - 10
    assert official.expected_flops().item() == pytest.approx(counted - 10 - 8 * 16 * 32 * 32, rel=1e-12)

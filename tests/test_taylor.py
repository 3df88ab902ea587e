"""Taylor (Molchanov et al. 2019): a filter's importance is the minibatch mean of (sum_filter w * dL/dw)^2, computed in
eval mode; the least important filters go, at a FLOP target."""

import copy

import pytest
import torch
import torch.nn.functional as F

from baselines.taylor import TaylorOptions, prune_taylor, taylor_scores
from tasbench.data import train_batches
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import resnet56
from tasbench.pruner import PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed

from helpers import random_data, tiny_arch

CPU = torch.device("cpu")


def test_scores_are_the_squared_first_order_term_averaged_over_batches():
    arch, data = tiny_arch(), random_data()
    model = seeded_resnet(arch, 0)
    options = TaylorOptions(batches=2, batch_size=16)
    scores, seen = taylor_scores(model, arch, data, options, seed=3)
    assert seen == 2
    # by hand, on the same two batches: autograd of the loss against one conv's weight, per batch
    conv = model.stages[1][0].convs[0]
    expected = torch.zeros(conv.out_channels, dtype=torch.float64)
    batches = train_batches(data, 16, derive_seed(3, "taylor-batches"), 0, CPU)
    model.eval()
    for _, (images, labels) in zip(range(2), batches):
        (grad,) = torch.autograd.grad(F.cross_entropy(model(images), labels), conv.weight)
        expected += (conv.weight * grad).flatten(1).sum(1).double().square()
    assert torch.allclose(scores["stages.1.0.convs.0"], expected / 2, rtol=1e-6, atol=1e-12)
    assert model.stem.conv.weight.grad is None  # no gradients left behind
    assert set(scores) >= {"stem.conv", "stages.1.0.shortcut.conv"}


def test_a_filter_that_cannot_change_the_loss_goes_first():
    """A zero filter has zero first-order importance (w = 0), so it is removed before any other of its conv."""
    arch, data = tiny_arch(), random_data()
    model = seeded_resnet(arch, 0)
    with torch.no_grad():
        model.stages[2][1].convs[0].weight[5] = 0
    before = copy.deepcopy(model.state_dict())
    out = prune_taylor(PruneRequest(arch, model, 0.8, data=data), TaylorOptions(scope="internal", batch_size=16))
    kept = out.info["kept"]["stages.2.1.convs.0"]
    assert 5 not in kept and len(kept) < 16
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's weights untouched


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_taylor_on_resnet56_reaches_its_flop_target(ratio):
    arch = resnet56()
    out = prune_taylor(
        PruneRequest(arch, seeded_resnet(arch, 0), ratio, data=random_data(32, 8)),
        TaylorOptions(batches=2, batch_size=16),
    )
    assert abs(macs(out.arch) / macs(arch) / ratio - 1) <= 0.01
    assert out.model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_taylor_needs_data_and_scores_what_a_small_set_has():
    arch = tiny_arch()
    with pytest.raises(ConfigError, match="^Taylor scores filters by loss gradients on the training data"):
        prune_taylor(PruneRequest(arch, seeded_resnet(arch, 0), 0.5), TaylorOptions())
    out = prune_taylor(PruneRequest(arch, seeded_resnet(arch, 0), 0.5, data=random_data(96, 8)), TaylorOptions())
    assert out.info["scored_batches"] == 1  # 96 images make one batch of 64 (the last partial batch is dropped)
    with pytest.raises(ConfigError, match=r"^batch_size must be in \[1, 65536\], got 0$"):
        TaylorOptions(batch_size=0)

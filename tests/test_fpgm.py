"""FPGM: the filters nearest the geometric median go; soft pruning zeroes them every epoch and resumes exactly."""

import copy

import pytest
import torch

from baselines import soft_pruning
from baselines.channel_groups import channel_groups, pruned_arch, slice_resnet, zero_channels
from baselines.flop_match import keep_counts, match_counts
from baselines.fpgm import FpgmOptions, distance_sums, prune_fpgm, rate_counts, reference_macs
from baselines.soft_pruning import soft_train
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import resnet56, resnet110
from tasbench.pruner import PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.train import TrainConfig

from helpers import random_data, tiny_arch

CPU = torch.device("cpu")


def cdist_sums(weight: torch.Tensor) -> torch.Tensor:
    flat = weight.detach().flatten(1).double()
    return torch.cdist(flat, flat).sum(1)


def test_distance_sums_match_cdist():
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(distance_sums(w), cdist_sums(w), rtol=1e-9, atol=1e-9)


def test_fpgm_removes_the_filters_with_the_smallest_summed_distances():
    arch = tiny_arch()
    model = seeded_resnet(arch, 0)
    out = prune_fpgm(PruneRequest(arch, model, 0.5), FpgmOptions(scope="internal"))
    convs = dict(model.named_modules())
    assert len(out.info["kept"]) == 9  # every block's first conv
    for name, kept in out.info["kept"].items():
        sums = cdist_sums(convs[name].weight)
        expected = sorted(torch.argsort(sums, descending=True)[: len(kept)].tolist())
        assert kept == expected, name


def test_kept_indices_on_a_seeded_tiny_net():
    out = prune_fpgm(PruneRequest(tiny_arch(), seeded_resnet(tiny_arch(), 0), 0.5), FpgmOptions())
    assert out.arch.xchannels == (3, 2, 4, 2, 4, 2, 4, 2, 7, 5, 6, 5, 6, 5, 12, 11, 12, 11, 12, 11)
    assert macs(out.arch) == 1_307_960
    kept = out.info["kept"]
    assert kept["stem.conv"] == kept["stages.0.2.convs.1"] == [1, 2]  # one residual chain, one choice
    assert kept["stages.1.0.convs.0"] == [1, 2, 3, 4, 5, 6, 7] and kept["stages.1.2.convs.0"] == [0, 1, 2, 5, 6, 7]
    assert kept["stages.2.0.convs.1"] == kept["stages.2.2.convs.1"] == [0, 1, 4, 6, 7, 8, 10, 11, 13, 14, 15]
    assert kept["stages.2.2.convs.0"] == [1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15]


@pytest.mark.parametrize("net", [resnet56, resnet110])
def test_reference_accounting_beside_the_counted_flops(net):
    # docs/reference/BASELINES.md: 40% of every conv's filters; He et al. state about -52.6% (ResNet-56) and -52.3%
    # (ResNet-110).
    full = net(shortcut="zero-pad")
    groups = channel_groups(full)
    physical = pruned_arch(full, keep_counts(groups, rate_counts(groups, 0.4)))
    expected = {"resnet56": (60_180_392, 48_718_490), "resnet110": (121_333_345, 98_070_170)}[net.__name__]
    assert (reference_macs(full, 0.4), macs(physical)) == expected
    # Reference rule int(n * 0.4) removed: 16/32/64 keep 10/20/39. The zero-pad chains are nested (stage 3's holds
    # stage 2's 20 channels plus 20 of its own 32), so stage 3's chain is 40 wide while its first convs are 39.
    assert sorted(set(physical.xchannels[1:])) == [10, 20, 39, 40]
    assert physical.xchannels[-2:] == (39, 40)
    assert round(100 * (1 - reference_macs(full, 0.4) / macs(full)), 1) == 52.0
    assert round(100 * (1 - macs(physical) / macs(full)), 1) == 61.2


class Interrupt(Exception):
    pass


def test_soft_training_zeroes_the_selection_and_resumes_bit_identically(tmp_path, monkeypatch):
    arch, data = tiny_arch(), random_data()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05)
    counts, _ = match_counts(arch, channel_groups(arch), 0.5, 0.01, "all", "FPGM")
    whole = seeded_resnet(arch, 0)
    soft = {"score": distance_sums, "freeze_masked": True, "device": CPU}
    keep, metrics = soft_train(whole, arch, counts, data, cfg, **soft, checkpoint_path=tmp_path / "a.pt")
    assert len(metrics["history"]) == 3
    # the final net is exactly the soft mask of its final selection: zeroing again changes nothing
    again = copy.deepcopy(whole)
    zero_channels(again, arch, keep, bn=False)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), again.state_dict().values()))
    assert macs(pruned_arch(arch, keep)) == macs(pruned_arch(arch, keep_counts(channel_groups(arch), counts)))
    # Filters zeroed before the first step stay zero: their gradients are masked (the reference), and even without
    # the mask their BN shift starts at 0, so they sit at ReLU's kink and get no gradient (SFP, test_sfp.py). The
    # sliced net then computes what the soft-masked net computes.
    _, small = slice_resnet(whole, arch, keep)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(small.eval()(x), whole.eval()(x), atol=1e-5)
    assert set(whole.state_dict()) == set(seeded_resnet(arch, 0).state_dict())  # no mask buffers left behind

    real_train = soft_pruning.train

    def train_then_stop(model, *args, **kwargs):
        # the reference masks once before training too: the stem chain enters training with its losers zeroed
        assert int((model.stem.conv.weight.flatten(1).abs().sum(1) == 0).sum()) == 4 - counts[0]

        def stop(history):
            if len(history) == 1:
                raise Interrupt

        return real_train(model, *args, on_epoch=stop, **kwargs)

    monkeypatch.setattr(soft_pruning, "train", train_then_stop)
    with pytest.raises(Interrupt):
        soft_train(seeded_resnet(arch, 0), arch, counts, data, cfg, **soft, checkpoint_path=tmp_path / "b.pt")
    monkeypatch.setattr(soft_pruning, "train", real_train)
    resumed = seeded_resnet(arch, 7)  # another init: everything, the gradient mask too, comes from the checkpoint
    keep_b, _ = soft_train(resumed, arch, counts, data, cfg, **soft, checkpoint_path=tmp_path / "b.pt")
    assert keep_b == keep
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # a run resumed after its last epoch trains nothing and reads the same selection back from its checkpoint
    done = seeded_resnet(arch, 9)
    assert soft_train(done, arch, counts, data, cfg, **soft, checkpoint_path=tmp_path / "b.pt")[0] == keep


def test_soft_mode_through_the_pruner():
    arch = tiny_arch()
    model = seeded_resnet(arch, 0)
    before = copy.deepcopy(model.state_dict())
    options = FpgmOptions(mode="soft", epochs=1, batch_size=32)
    assert options.needs_data and not FpgmOptions().needs_data
    out = prune_fpgm(PruneRequest(arch, model, 0.5, data=random_data()), options)
    assert out.info["mode"] == "soft" and out.info["soft_training"]["epochs"] == 1
    assert 0 <= out.info["soft_training"]["sliced_top1"] <= 100
    assert abs(macs(out.arch) / (0.5 * macs(arch)) - 1) <= 0.01
    assert out.model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's net is untouched
    with pytest.raises(ConfigError, match="FPGM mode 'soft' trains the net and needs data"):
        prune_fpgm(PruneRequest(arch, model, 0.5), options)
    with pytest.raises(ConfigError, match="unknown FPGM mode 'gentle'; allowed: hard, soft"):
        FpgmOptions(mode="gentle")

"""SFP and the soft-pruning loop it shares with FPGM: SFP's zeroed filters keep training and can grow back, FPGM's
gradient mask keeps them at zero (its reference's `do_grad_mask`), and a killed soft run resumes mid-training."""

import pytest
import torch

from baselines import soft_pruning
from baselines.channel_groups import channel_groups, output_convs, zero_channels
from baselines.flop_match import group_scores, keep_best, match_counts
from baselines.fpgm import FpgmOptions, distance_sums, prune_fpgm
from baselines.sfp import SfpOptions, l2_norms, prune_sfp
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import resnet56
from tasbench.pruner import PruneRequest
from tasbench.resnet import seeded_resnet
from tasbench.train import TrainConfig

from helpers import random_data, tiny_arch

CPU = torch.device("cpu")


def trained_like(arch, seed=0):
    """A seeded net whose BN shifts are positive, as a trained net's often are: a zeroed filter's channel then
    sits above ReLU's kink and gets a gradient (with shift 0 it would get none, masked or not)."""
    model = seeded_resnet(arch, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.copy_(0.1 + 0.2 * torch.rand(m.bias.shape, generator=g))
    return model


def removed_filters(model, arch, keep):
    """(conv, removed output channels) for every conv a selection prunes."""
    out = []
    for conv, slot in output_convs(model, arch).values():
        removed = sorted(set(range(conv.out_channels)) - set(keep.get(slot, range(conv.out_channels))))
        if removed:
            out.append((conv, removed))
    return out


@pytest.mark.parametrize("freeze", [True, False], ids=["fpgm-masks-gradients", "sfp-trains-them"])
def test_zeroed_filters_get_a_gradient_only_in_sfp(freeze):
    arch = tiny_arch()
    model = trained_like(arch)
    groups = channel_groups(arch)
    counts, _ = match_counts(arch, groups, 0.5, 0.01, "all", "test")
    keep = keep_best(groups, group_scores(model, arch, groups, l2_norms), counts)
    zero_channels(model, arch, keep, bn=False)
    soft_pruning.record(model, arch, keep)
    hooks = soft_pruning.mask_gradients(model, arch) if freeze else []
    data = random_data()
    images, labels = data.train.images[:32].float() / 255, data.train.labels[:32]
    torch.nn.functional.cross_entropy(model.train()(images), labels).backward()
    grads = [conv.weight.grad[removed].abs().sum().item() for conv, removed in removed_filters(model, arch, keep)]
    kept = [conv.weight.grad.abs().sum().item() for conv, _ in removed_filters(model, arch, keep)]
    assert len(grads) > 5 and all(k > 0 for k in kept)
    if freeze:
        assert all(g == 0 for g in grads)
    else:
        assert sum(g > 0 for g in grads) == len(grads)
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize("score,freeze", [(l2_norms, False), (distance_sums, True)], ids=["sfp", "fpgm"])
def test_sfp_filters_grow_back_between_selections_and_fpgm_filters_do_not(score, freeze, monkeypatch):
    """What one selection zeroed is, by the next selection, nonzero again in SFP and still exactly zero in FPGM
    (masked before the first step, when SGD's momentum is still empty)."""
    arch = tiny_arch()
    real_zero = soft_pruning.zero_channels
    previous, regrown = [], []

    def zero_and_watch(net, arch, keep, bn):
        if previous:
            filters = removed_filters(net, arch, previous[-1])
            regrown.append(sum(int((conv.weight[r].flatten(1).abs().sum(1) > 0).sum()) for conv, r in filters))
        previous.append(keep)
        real_zero(net, arch, keep, bn=bn)

    monkeypatch.setattr(soft_pruning, "zero_channels", zero_and_watch)
    counts, _ = match_counts(arch, channel_groups(arch), 0.5, 0.01, "all", "test")
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    model = trained_like(arch)
    soft_pruning.soft_train(model, arch, counts, random_data(), cfg, score=score, freeze_masked=freeze, device=CPU)
    assert len(regrown) == 2  # selections before the first step and after each of the 2 epochs
    if freeze:
        assert regrown[0] == 0  # momentum was empty when they were zeroed: nothing moves them
    else:
        assert min(regrown) > 0


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("prune,options", [(prune_sfp, SfpOptions), (prune_fpgm, FpgmOptions)], ids=["sfp", "fpgm"])
def test_a_killed_soft_run_resumes_mid_training_to_the_uninterrupted_result(prune, options, tmp_path, monkeypatch):
    arch, data = tiny_arch(), random_data()
    opts = options(mode="soft", epochs=3, batch_size=16, lr=0.05)
    request = lambda workdir: PruneRequest(arch, trained_like(arch), 0.5, data=data, workdir=str(workdir))  # noqa: E731
    whole = prune(request(tmp_path / "whole"), opts)
    assert (tmp_path / "whole" / "soft-pruning.pt").is_file()

    real_train = soft_pruning.train
    epochs_run = []

    def stop_after_two(*args, **kwargs):
        def stop(history):
            epochs_run.append(history[-1]["epoch"])
            if len(history) == 2:
                raise Interrupt

        return real_train(*args, on_epoch=stop, **kwargs)

    monkeypatch.setattr(soft_pruning, "train", stop_after_two)
    with pytest.raises(Interrupt):
        prune(request(tmp_path / "killed"), opts)
    epochs_run.clear()
    resumed = prune(request(tmp_path / "killed"), opts)  # same directory: resumes after epoch 2
    assert epochs_run == [3]
    assert resumed.arch == whole.arch and resumed.info["kept"] == whole.info["kept"]
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.info["soft_training"]["top1"] == whole.info["soft_training"]["top1"]


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_sfp_on_resnet56_reaches_its_flop_target(ratio):
    """One soft epoch on small data: ResNet-56's pruned net lands within 1% of the target FLOPs."""
    arch = resnet56()
    out = prune_sfp(
        PruneRequest(arch, seeded_resnet(arch, 0), ratio, data=random_data(64, 16)), SfpOptions(epochs=1, batch_size=32)
    )
    assert abs(macs(out.arch) / macs(arch) / ratio - 1) <= 0.01
    assert out.info["mode"] == "soft" and out.info["soft_training"]["epochs"] == 1
    assert sum(p.numel() for p in out.model.parameters()) < sum(p.numel() for p in seeded_resnet(arch, 0).parameters())


def test_sfp_options_and_data():
    assert SfpOptions().needs_data and not SfpOptions(mode="hard").needs_data
    with pytest.raises(ConfigError, match="^SFP mode 'soft' trains the net and needs data"):
        prune_sfp(PruneRequest(tiny_arch(), seeded_resnet(tiny_arch(), 0), 0.5), SfpOptions())
    with pytest.raises(ConfigError, match="^unknown SFP mode 'gentle'; allowed: hard, soft$"):
        SfpOptions(mode="gentle")


@pytest.mark.slow
def test_a_sweep_killed_during_soft_pruning_resumes_to_the_uninterrupted_numbers(tmp_path):
    """A real sweep SIGKILLed once its SFP run has checkpointed soft training mid-way (soft-pruning.pt in the run
    directory), restarted, ends with the metrics and weights of an uninterrupted sweep."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from runner_helpers import LATENCY, assert_same_runs, write_spec

    from tasbench.checkpoint import load_checkpoint
    from tasbench.runner.spec import load_sweep

    spec = write_spec(
        tmp_path,
        data={"dataset": "proxy", "proxy_train": 256, "proxy_test": 32},
        methods=[{"method": "sfp", "label": "SFP", "options": {"epochs": 6, "batch_size": 16}}],
        ratios=[0.5],
        recipes=[{"name": "finetune", "epochs": 1, "batch_size": 32}],
    )
    (run,) = load_sweep(spec).runs
    env = {**os.environ, "WANDB_MODE": "disabled"}
    sweep = lambda root: [sys.executable, "-m", "tasbench.cli", "sweep", str(spec), "--out", str(root), *LATENCY]  # noqa: E731
    subprocess.run([*sweep(tmp_path / "ref"), "--threads", "1"], check=True, env=env, capture_output=True)

    first = subprocess.Popen([*sweep(tmp_path / "root"), "--threads", "1"], env=env, start_new_session=True)
    state = run.directory(tmp_path / "root") / "soft-pruning.pt"
    deadline = time.time() + 300
    while not state.exists():
        assert first.poll() is None and time.time() < deadline, "the sweep ended before soft pruning checkpointed"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    epoch = load_checkpoint(state)["epoch"]
    assert 1 <= epoch < 6 and not (run.directory(tmp_path / "root") / "pruned.pt").exists()

    # resumed with another thread count on the command line: the run computes with its recorded one
    subprocess.run([*sweep(tmp_path / "root"), "--threads", "2"], check=True, env=env, capture_output=True)
    assert_same_runs([run], tmp_path / "ref", tmp_path / "root")

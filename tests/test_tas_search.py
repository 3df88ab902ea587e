"""The TAS search network and loop: equal to a literal transcription of the official forward pass, resumable,
reaching its FLOP band, and every ablation running."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tas.flop_loss import ExpectedFlops
from tas.random_search import random_arch
from tas.reference_forward import official_forward
from tas.search import SearchConfig, run_search, tau_at
from tas.search_data import SPLITS, epoch_size, num_search_steps, search_batches, split_halves
from tas.search_model import SearchResNet
from tas.search_space import choices, search_space
from tasbench.data import DataConfig, ImageData, TensorSplit, load_data
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import resnet18, resnet20, resnet50, resnet56

from helpers import tiny_arch


@pytest.mark.parametrize(
    "arch, options",
    [
        (resnet20(), {}),
        (resnet20(), {"k": 1}),
        (resnet20(), {"k": 0}),
        (resnet20(), {"align_mode": "zero-pad"}),
        (resnet20(), {"searched": "width"}),
        (resnet20(), {"searched": "depth"}),
        (resnet56(), {}),
        (
            resnet20().replace(
                block="bottleneck",
                layers=(2, 2, 2),
                xblocks=(2, 2, 2),
                xchannels=(3, 16) + (16, 16, 64) * 2 + (32, 32, 128) * 2 + (64, 64, 256) * 2,
            ),
            {},
        ),
    ],
    ids=["tas", "k1", "k-all", "no-cwi", "tas-w", "tas-d", "resnet56", "bottleneck"],
)
def test_forward_and_gradients_equal_the_official_formulation(arch, options):
    """Same picks, same weights: our sliced/folded forward equals the zero-padded official one, in both shape modes.

    In float64, so that the two orders of summation agree to ~1e-15 and any real difference stands out (in float32
    the stem's gradient differs by ~3e-5 between torch releases, through batch-norm rounding over 4 images).
    """
    torch.manual_seed(0)
    images = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    model = SearchResNet(search_space(arch), **options).double()
    picks, depth = model.sample(tau=3.0, generator=torch.Generator().manual_seed(0))
    ours = model.forward_picked(images, picks, depth)
    theirs = official_forward(model, images, picks, depth)
    assert torch.allclose(ours, theirs, atol=1e-12), (ours - theirs).abs().max()
    params = [model.stem.conv.weight, model.width_logits, model.depth_logits, model.fc.weight]
    # The picks' weights are shared by both graphs: keep them for the second gradient.
    grads = torch.autograd.grad(ours.square().sum(), params, allow_unused=True, retain_graph=True)
    expected = torch.autograd.grad(theirs.square().sum(), params, allow_unused=True)
    for a, b in zip(grads, expected):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-12, rtol=1e-9)
    static = SearchResNet(search_space(arch), static_shapes=True, **options).double()
    static.load_state_dict(model.state_dict())
    static_picks, static_depth = static.sample(tau=3.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(static.forward_picked(images, static_picks, static_depth), ours, atol=1e-12)


def test_static_shapes_read_nothing_back_from_the_device():
    """The GPU path: sampling, forward, expected FLOPs, FLOP loss and backward without reading one value back.

    This machine has no GPU, so the check runs on PyTorch's `meta` device, whose tensors have shapes but no data:
    any `.item()`, `.tolist()`, `bool(t)` or data-dependent shape fails there. The dynamic-shape path reads the
    picked widths back once per pass (free on a CPU) and so fails, which shows the check is not vacuous.
    """
    from tas.flop_loss import flop_loss

    def step(model: SearchResNet) -> torch.Tensor:
        logits = model(torch.randn(2, 3, 32, 32, device="meta"), 5.0, None)
        loss = F.cross_entropy(logits, torch.tensor([0, 1], device="meta"))
        loss = loss + flop_loss(model.expected_flops(), model.argmax_flops(), 2e7, 2e6)
        loss.backward()
        return model.width_logits.grad

    static = SearchResNet(search_space(resnet20()), static_shapes=True).to("meta")
    assert step(static).shape == (19, 8)
    with pytest.raises(NotImplementedError, match="no data"):
        step(SearchResNet(search_space(resnet20())).to("meta"))


def test_bad_search_settings_name_the_value_and_the_range():
    with pytest.raises(ConfigError, match=r"k=9 width samples: allowed 1\.\.8"):
        SearchResNet(search_space(resnet20()), k=9)
    with pytest.raises(ConfigError, match=r"tau_min must be in \(0, tau_max=1.0\], got 2.0"):
        SearchConfig(tau_max=1.0, tau_min=2.0)
    with pytest.raises(ConfigError, match="unknown search 'both'; allowed: width\\+depth, width, depth, random"):
        SearchConfig(search="both")
    data = load_data(DataConfig("proxy", proxy_train=64, proxy_test=10))
    with pytest.raises(ConfigError, match=r"FLOP ratio 0.01 is below the smallest net .* allowed: \[0.0245, 1\]"):
        run_search(resnet20(), data, SearchConfig(epochs=1), 0.01, progress=False)
    with pytest.raises(ConfigError, match=r"search='depth'\); allowed: \[0.3"):
        run_search(resnet20(), data, SearchConfig(epochs=1, search="depth"), 0.2, progress=False)


def test_tau_schedules():
    paper = SearchConfig(epochs=5)
    assert [tau_at(e, paper) for e in range(5)] == pytest.approx([10, 7.525, 5.05, 2.575, 0.1])
    code = SearchConfig(epochs=4, tau_schedule="cosine", tau_max=5)
    assert [tau_at(e, code) for e in range(4)] == pytest.approx([5, 4.2825, 2.55, 0.8175], abs=1e-4)


# ---- the search loop ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy():
    return load_data(DataConfig("proxy", proxy_train=512, proxy_test=64))


# A short search: 8 epochs of 8 steps on 512 proxy images, Adam 10x faster than the official 1e-3. All logits start
# near-tied, so each step flips many argmaxes at once and the argmax net oscillates around the band; which epoch
# ends inside it depends on the last bit of every float (thread count, CPU). `select=in-band` keeps the last
# epoch-end net inside the band, which every oscillating search visits; docs/tas.md reports how often
# `select=last` (the paper's rule) ends inside. These settings were tuned on the random split: with the release's
# split (the default, run by the resume test) this tiny net's 0.7 search happens to stay outside the band for 8
# epochs, with either FLOP count.
FAST = SearchConfig(epochs=8, batch_size=32, arch_lr=0.01, select="in-band", split="random")


@pytest.fixture(scope="module")
def searches(proxy):
    return {ratio: run_search(tiny_arch(), proxy, FAST, ratio, seed=0, progress=False) for ratio in (0.3, 0.5, 0.7)}


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_short_search_ends_inside_the_flop_band(searches, ratio):
    result = searches[ratio]
    assert ratio - 0.05 <= macs(result.arch) / macs(tiny_arch()) <= ratio
    assert result.info["in_band"] and result.info["flop_ratio"] == macs(result.arch) / macs(tiny_arch())
    kept = result.history[result.info["selected_epoch"] - 1]
    assert kept["flop_ratio"] == result.info["flop_ratio"] and kept["arch"]["xblocks"] == list(result.arch.xblocks)
    assert result.info["flop_count"] == "official" and result.info["current_flop_ratio"] == kept["current_flop_ratio"]


def test_history_records_the_release_count_and_the_built_count(searches):
    """Each epoch's row: the argmax net's FLOPs as the loss counted them (the release's way) and as built."""
    full = macs(tiny_arch())
    space = search_space(tiny_arch())
    official = ExpectedFlops(space, "official")
    differ = 0
    for row in (r for result in searches.values() for r in result.history):
        arch = tiny_arch().replace(xchannels=tuple(row["arch"]["xchannels"]), xblocks=tuple(row["arch"]["xblocks"]))
        widths, depths = (torch.tensor(i) for i in choices(space, arch))
        assert row["current_flop_ratio"] == official.current(widths, depths).item() / full
        assert row["flop_ratio"] == macs(arch) / full
        differ += row["current_flop_ratio"] != row["flop_ratio"]
    assert differ == 24  # the release's count never includes the classifier bias


@pytest.mark.slow
def test_the_flop_loss_moves_the_search_into_the_band(proxy, searches):
    """Without the FLOP loss the argmax net never reaches the band [0.65, 0.7]; with it, it does."""
    free = run_search(tiny_arch(), proxy, dataclasses.replace(FAST, flop_weight=0.0), 0.7, seed=0, progress=False)
    assert max(r["flop_ratio"] for r in free.history) < 0.65 and not free.info["in_band"]
    assert any(0.65 <= r["flop_ratio"] <= 0.7 for r in searches[0.7].history)


def numbered_data(n: int = 100, classes: int = 10) -> ImageData:
    """Image i is the constant i (uint8), label i % classes: each image's number survives crops and flips."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    split = TensorSplit(images, torch.arange(n) % classes)
    return ImageData("numbered", classes, (0.0,) * 3, (1.0,) * 3, split, split)


def numbers(images: torch.Tensor) -> list[int]:
    """The numbers of a normalised batch (mean 0, std 1: pixel = i / 255), read at the centre, which no crop moves
    past the border."""
    return (images[:, 0, 16, 16] * 255).round().long().tolist()


@pytest.mark.parametrize("split", SPLITS)
def test_the_train_split_is_halved_into_disjoint_halves(proxy, split):
    weights, arch = split_halves(proxy, split, 111, seed=0)
    assert len(weights.train) == len(arch.train) == 256
    pixels = {tuple(x.flatten()[:64].tolist()) for x in torch.cat([weights.train.images, arch.train.images])}
    assert len(pixels) == 512  # every image lands in exactly one half
    assert torch.equal(split_halves(proxy, split, 111, seed=0)[0].train.labels, weights.train.labels)


def test_the_official_split_is_stratified_and_fixed_by_its_own_seed():
    data = numbered_data(103)  # classes 0-2 hold 11 images, 3-9 hold 10
    weights, arch = split_halves(data, "official", 111, seed=0)
    w, a = numbers(weights.train.images.float() / 255), numbers(arch.train.images.float() / 255)
    assert sorted(w + a) == list(range(103))
    assert [sum(i % 10 == c for i in w) for c in range(10)] == [6, 5, 6] + [5] * 7  # odd images alternate
    assert torch.equal(split_halves(data, "official", 111, seed=5)[0].train.images, weights.train.images)
    assert not torch.equal(split_halves(data, "official", 112, seed=0)[0].train.images, weights.train.images)
    random_half = split_halves(data, "random", 111, seed=0)[0].train.images
    assert not torch.equal(split_halves(data, "random", 111, seed=5)[0].train.images, random_half)
    two_classes_of_one = numbered_data(2)  # the odd images alternate, so 2 images always make two halves
    assert [len(h.train) for h in split_halves(two_classes_of_one, "official", 111, seed=0)] == [1, 1]
    for split in SPLITS:
        with pytest.raises(ConfigError, match="the search needs at least 2 training images .*got 1"):
            split_halves(numbered_data(1), split, 111, seed=0)


def test_official_batches_keep_the_partial_batch_and_draw_architecture_images_with_replacement():
    weights, arch = split_halves(numbered_data(), "official", 111, seed=0)
    w_half, a_half = set(numbers(weights.train.images.float() / 255)), set(numbers(arch.train.images.float() / 255))
    cpu = torch.device("cpu")
    batches = list(search_batches(weights, arch, 16, "official", seed=3, epoch=1, device=cpu))
    assert num_search_steps(weights, arch, 16, "official") == len(batches) == 4
    assert [len(w[1]) for w, _ in batches] == [len(a[1]) for _, a in batches] == [16, 16, 16, 2]
    drawn_w = [i for w, _ in batches for i in numbers(w[0])]
    drawn_a = [i for _, a in batches for i in numbers(a[0])]
    assert sorted(drawn_w) == sorted(w_half)  # every weight image once
    assert set(drawn_a) <= a_half and len(set(drawn_a)) < len(drawn_a) == 50  # 50 draws, some repeated
    again = list(search_batches(weights, arch, 16, "official", seed=3, epoch=1, device=cpu))
    assert all(torch.equal(x[0][0], y[0][0]) and torch.equal(x[1][0], y[1][0]) for x, y in zip(batches, again))
    random = list(search_batches(weights, arch, 16, "random", seed=3, epoch=1, device=cpu))
    assert [(len(w[1]), len(a[1])) for w, a in random] == [(16, 16)] * 3  # partial batches dropped
    assert len({i for _, a in random for i in numbers(a[0])}) == 48  # a permutation: no repeats


@pytest.mark.parametrize("n", [2, 50, 101, 103, 512])
@pytest.mark.parametrize("split", SPLITS)
def test_the_dry_run_counts_the_epoch_the_search_runs(n, split):
    """`epoch_size` (the plan's budget, before any split is drawn) equals what the drawn halves run."""
    weights, arch = split_halves(numbered_data(n), split, 111, seed=0)
    batches = list(search_batches(weights, arch, 16, split, seed=0, epoch=0, device=torch.device("cpu")))
    assert epoch_size(n, 16, split) == (len(batches), sum(len(w[1]) + len(a[1]) for w, a in batches))


@pytest.mark.slow
def test_resumed_search_equals_an_uninterrupted_one(proxy, tmp_path, monkeypatch):
    import tas.search

    cfg = dataclasses.replace(FAST, epochs=2, batch_size=64, split="official")  # the release's split and count
    whole = run_search(tiny_arch(), proxy, cfg, 0.5, seed=3, progress=False, checkpoint_path=tmp_path / "a.pt")
    save = tas.search.save_torch

    def save_then_die(path, obj):  # the process dies right after its first epoch's checkpoint
        save(path, obj)
        raise KeyboardInterrupt

    monkeypatch.setattr(tas.search, "save_torch", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_search(tiny_arch(), proxy, cfg, 0.5, seed=3, progress=False, checkpoint_path=tmp_path / "b.pt")
    monkeypatch.undo()
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 1
    resumed = run_search(tiny_arch(), proxy, cfg, 0.5, seed=3, progress=False, checkpoint_path=tmp_path / "b.pt")
    assert resumed.arch == whole.arch
    assert resumed.info["width_probs"] == whole.info["width_probs"]
    assert [r | {"seconds": 0} for r in resumed.history] == [r | {"seconds": 0} for r in whole.history]


def test_resume_refuses_another_configuration(proxy, tmp_path):
    cfg = dataclasses.replace(FAST, epochs=1, batch_size=128)
    run_search(tiny_arch(), proxy, cfg, 0.5, progress=False, checkpoint_path=tmp_path / "c.pt")
    with pytest.raises(ConfigError, match="another configuration"):
        run_search(tiny_arch(), proxy, cfg, 0.6, progress=False, checkpoint_path=tmp_path / "c.pt")


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.9])
def test_random_search_lands_in_the_band(ratio):
    space = search_space(resnet56())
    arch, info = random_arch(space, ratio, 0.05, seed=1)
    assert ratio - 0.05 <= macs(arch) / macs(resnet56()) <= ratio
    assert arch != random_arch(space, ratio, 0.05, seed=2)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, shortcut",
    [(resnet18, "official"), (resnet50, "official"), (resnet18, "torchvision")],
    ids=["resnet18", "resnet50", "resnet18-torchvision"],
)
def test_imagenet_search_steps_on_random_224_pixel_images(make, shortcut):
    """The released code has no ImageNet search; ours runs the loop's own step (weights, then logits) at 224x224.
    With torchvision's strided projection (a torchvision teacher's net) the derived net keeps it."""
    from tas.search import build_search_model, make_optimizers, search_step

    arch = make(num_classes=10, shortcut=shortcut)
    cfg = SearchConfig()
    model = build_search_model(search_space(arch), cfg, 0, torch.device("cpu"))
    w_opt, a_opt = make_optimizers(model, cfg)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 224, 224, generator=g).contiguous(memory_format=torch.channels_last)
    batch = (images, torch.tensor([1, 7]))
    logits, weights = model.width_logits.detach().clone(), model.stem.conv.weight.detach().clone()
    for _ in range(2):
        stats = search_step(model, w_opt, a_opt, batch, batch, 5.0, g, (0.5 * macs(arch), 0.05 * macs(arch), 2.0))
    assert stats[4] == 2 and torch.isfinite(stats).all()
    assert not torch.equal(logits, model.width_logits) and not torch.equal(weights, model.stem.conv.weight)
    assert model.derive().family == "imagenet" and 0 < macs(model.derive()) < macs(arch)
    assert model.derive().shortcut == shortcut

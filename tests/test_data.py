"""Data: the CIFAR reader on files written in the real format, subsets, and batch augmentation on the device."""

import pickle

import numpy as np
import pytest
import torch
import torchvision

from tasbench import cifar, testing
from tasbench.data import DataConfig, balanced_subset, crop_flip, load_data, train_batches
from tasbench.errors import ConfigError


def fake_split(n: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % classes


@pytest.fixture
def cifar10_dir(tmp_path):
    splits = {"train": fake_split(50, 10, 0), "test": fake_split(20, 10, 1)}
    testing.write_cifar("cifar10", tmp_path, splits)
    return tmp_path, splits


def test_reader_reads_the_real_layout(cifar10_dir):
    root, splits = cifar10_dir
    data = load_data(DataConfig("cifar10"), root)
    assert torch.equal(data.train.images, splits["train"][0]) and torch.equal(data.train.labels, splits["train"][1])
    assert torch.equal(data.test.images, splits["test"][0]) and torch.equal(data.test.labels, splits["test"][1])


def test_reader_agrees_with_torchvision(cifar10_dir, monkeypatch):
    root, _ = cifar10_dir
    # torchvision checks the files' MD5 against the published archive; ours are small stand-ins in the same format.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    for train in (True, False):
        reference = torchvision.datasets.CIFAR10(str(root), train=train)
        images, labels = cifar.read_cifar("cifar10", root, train)
        assert np.array_equal(images.permute(0, 2, 3, 1).numpy(), reference.data)  # torchvision holds NHWC
        assert labels.tolist() == reference.targets
        assert reference.classes == [f"class_{c}" for c in range(10)]


def test_pixel_layout_is_rgb_planes_row_major(tmp_path):
    # One image whose red plane counts 0..1023 in row-major order: pixel (row 1, col 2) must hold 34 % 256.
    flat = np.zeros((1, 3072), dtype=np.uint8)
    flat[0, :1024] = np.arange(1024) % 256
    flat[0, 2048 + 5] = 200  # blue plane, row 0, col 5
    batch = {"data": flat, "labels": [3], "batch_label": "x", "filenames": ["a.png"]}
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    (base / "test_batch").write_bytes(testing.python2_pickle(batch))
    images, labels = cifar.read_batch(base / "test_batch", "labels", 10, "CIFAR-10")
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [3]
    assert images[0, 0, 1, 2] == 34 and images[0, 2, 0, 5] == 200 and images[0, 1].sum() == 0


def test_writer_emits_python2_byte_strings():
    blob = testing.python2_pickle({"labels": [1], "data": np.zeros((1, 3072), np.uint8)})
    assert blob[:2] == b"\x80\x02" and b"U\x06labels" in blob  # protocol 2, SHORT_BINSTRING keys
    assert b"_codecs" not in blob and b"X\x06\x00\x00\x00labels" not in blob  # no Python-3 str or bytes opcodes


def test_reader_accepts_arrays_pickled_by_old_numpy(tmp_path):
    # The published files were pickled by numpy 1.x, which names numpy.core.multiarray rather than numpy._core.
    batch = {"data": np.full((2, 3072), 7, dtype=np.uint8), "labels": [0, 1]}
    blob = testing.python2_pickle(batch)
    assert b"numpy._core.multiarray" in blob
    path = tmp_path / "old"
    path.write_bytes(blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, _ = cifar.read_batch(path, "labels", 10, "CIFAR-10")
    assert images.sum() == 7 * 2 * 3072


def test_cifar100_uses_fine_labels(tmp_path):
    splits = {"train": fake_split(30, 100, 2), "test": fake_split(10, 100, 3)}
    testing.write_cifar("cifar100", tmp_path, splits)
    data = load_data(DataConfig("cifar100"), tmp_path / "cifar-100-python")  # the sub-folder itself works too
    assert data.num_classes == 100 and torch.equal(data.train.labels, splits["train"][1])
    other = "it has no 'labels' key \\(keys: .*\\); its 'fine_labels' say it is the other CIFAR"
    with pytest.raises(ConfigError, match=other):
        cifar.read_batch(tmp_path / "cifar-100-python" / "train", "labels", 10, "CIFAR-10")


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "not a readable pickle"),
        (testing.python2_pickle({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 4})[:200], "not a readable"),
        (pickle.dumps({"data": Exploit(), "labels": [0]}, protocol=2), "refusing to load __builtin__.print"),
        (pickle.dumps([1, 2, 3], protocol=2), "holds a list, expected a dict"),
        (pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}), "expected uint8 \\(N, 3072\\)"),
        (pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3}), "4 images but 'labels'"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), "labels span 0..10"),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 2**70]}), f"labels span 0..{2**70}, "),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 2.7]}),
            "'labels' holds 2.7 \\(float\\), expected a list of integers",
        ),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, [1]]}),
            "'labels' holds \\[1\\] \\(list\\)",
        ),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, True]}), "'labels' holds True \\(bool\\)"),
        (
            pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": np.array([0.0, 1.0])}),
            "'labels' is a ndarray, expected a list of integers",
        ),
        (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": "01"}), "'labels' is a str, expected a list"),
    ],
    ids=[
        "empty",
        "truncated",
        "code",
        "list",
        "shape",
        "count",
        "range",
        "huge",
        "float",
        "nested",
        "bool",
        "float-array",
        "string",
    ],
)
def test_corrupt_batch_is_named(cifar10_dir, content, message, capsys):
    root, _ = cifar10_dir
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"CIFAR-10 batch '{path}' is corrupt: .*{message}"):
        load_data(DataConfig("cifar10"), root)
    assert "pwned" not in capsys.readouterr().out


def test_missing_data_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"data directory '{tmp_path / 'nope'}' does not exist"):
        load_data(DataConfig("cifar10"), tmp_path / "nope")
    with pytest.raises(ConfigError, match="data_batch_1' is missing; extract the python version of CIFAR-10"):
        load_data(DataConfig("cifar10"), tmp_path)
    with pytest.raises(ConfigError, match="needs --data-dir"):
        load_data(DataConfig("cifar100"))


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    # No network here or in CI; make that certain, whatever the machine, and check the message says what to do.
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    with pytest.raises(ConfigError, match="could not download CIFAR-10 into .*download the python version from"):
        load_data(DataConfig("cifar10"), tmp_path, download=True)


def test_balanced_subset():
    labels = torch.arange(1000) % 10
    index = balanced_subset(labels, 95, 10, "train")
    assert len(index) == 95 and len(set(index.tolist())) == 95
    assert torch.bincount(labels[index]).tolist() == [10] * 5 + [9] * 5
    assert torch.equal(index, balanced_subset(labels, 95, 10, "train"))
    with pytest.raises(ConfigError, match="subset of 2000 exceeds the 1000 train images"):
        balanced_subset(labels, 2000, 10, "train")


def test_subset_option(cifar10_dir):
    root, _ = cifar10_dir
    data = load_data(DataConfig("cifar10", subset=20, test_subset=10), root)
    assert len(data.train) == 20 and torch.bincount(data.train.labels).tolist() == [2] * 10
    assert len(data.test) == 10


def test_crop_flip_matches_per_image_reference():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    out = crop_flip(images, torch.Generator().manual_seed(1))
    # Replay the same draws and crop/flip each image by hand with torchvision's functional ops.
    g = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 9, (16, 1), generator=g)
    dx = torch.randint(0, 9, (16, 1), generator=g)
    flip = torch.rand(16, 1, generator=g) < 0.5
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(16):
        ref = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        ref = ref.flip(2) if flip[i] else ref
        assert torch.equal(out[i], ref)
    assert out.dtype == torch.uint8 and flip.any() and not flip.all()


def test_epoch_batches_depend_only_on_seed_and_epoch(cifar10_dir):
    root, _ = cifar10_dir
    data = load_data(DataConfig("cifar10"), root)
    cpu = torch.device("cpu")
    first = [(x.clone(), y.clone()) for x, y in train_batches(data, 16, seed=3, epoch=1, device=cpu)]
    again = list(train_batches(data, 16, seed=3, epoch=1, device=cpu))
    other = list(train_batches(data, 16, seed=3, epoch=2, device=cpu))
    assert len(first) == 3  # 50 images, batches of 16, the partial batch dropped
    kept = list(train_batches(data, 16, seed=3, epoch=1, device=cpu, drop_last=False))
    assert [len(y) for _, y in kept] == [16, 16, 16, 2] and all(torch.equal(a[0], b[0]) for a, b in zip(first, kept))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])
    assert first[0][0].is_contiguous(memory_format=torch.channels_last)


def test_bad_data_config_is_named():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; allowed: proxy, cifar10, cifar100, imagenet"):
        DataConfig("mnist")
    with pytest.raises(ConfigError, match="subset must be in \\[0, 100000000\\] \\(0 = all\\), got -1"):
        DataConfig("cifar10", subset=-1)


def test_imagenet_folder_layout(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 4), ("val", 2)):
        for wnid in ("n01440764", "n01443537"):
            folder = tmp_path / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = torch.randint(0, 256, (80, 100, 3), dtype=torch.uint8, generator=g).numpy()
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    data = load_data(DataConfig("imagenet", workers=0), tmp_path)
    assert data.num_classes == 1000 and len(data.train) == 8 and len(data.test) == 4
    cpu = torch.device("cpu")
    images, labels = next(train_batches(data, 4, seed=0, epoch=0, device=cpu))
    assert images.shape == (4, 3, 224, 224) and images.dtype == torch.float32 and set(labels.tolist()) <= {0, 1}
    # The TAS search's architecture batches: 11 draws with replacement from 8 images, the partial batch kept.
    drawn = list(train_batches(data, 4, seed=0, epoch=0, device=cpu, drop_last=False, draws=11))
    assert [len(y) for _, y in drawn] == [4, 4, 3]
    from tasbench.data import eval_batches

    batches = list(eval_batches(data, 3, cpu))
    assert [len(y) for _, y in batches] == [3, 1] and batches[0][1].tolist() == [0, 0, 1]
    with pytest.raises(ConfigError, match="ImageNet folder '.*/val' does not exist"):
        (tmp_path / "val").rename(tmp_path / "validation")
        load_data(DataConfig("imagenet", workers=0), tmp_path)

"""Data sets as uint8 tensors on the training device, and the batches a training loop reads.

CIFAR-10/100 and the proxy (`proxy_data.py`) are loaded once as uint8 (N, 3, 32, 32) tensors and moved to the device
once; each epoch's shuffle, pad-4 crops and flips are drawn for the whole batch at once on that device from a
generator seeded by (seed, epoch), as in airbench. ImageNet streams from its folders (`imagenet.py`).

    >>> data = load_data(DataConfig("proxy"))
    >>> data.train.images.shape, data.test.images.shape, data.num_classes
    (torch.Size([5000, 3, 32, 32]), torch.Size([2000, 3, 32, 32]), 10)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tasbench import cifar
from tasbench.bounds import MAX_PROXY_IMAGES, MAX_SEED, MAX_SUBSET, MAX_WORKERS, check_fields
from tasbench.errors import ConfigError, choice_error
from tasbench.seeds import derive_seed


@dataclass(frozen=True)
class DatasetFacts:
    """What every part of tas-bench knows about a data set, in one table: the nets it fits, its normalisation (CIFAR
    and ImageNet statistics as published; the proxy's are computed from its generated training set) and its full
    split sizes (the proxy's are chosen per run, `DataConfig.proxy_train`/`proxy_test`)."""

    num_classes: int
    family: str  # the architecture family whose image size it has: "cifar" (32x32) or "imagenet"
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    train_images: int | None
    test_images: int | None


DATASETS = {
    "proxy": DatasetFacts(10, "cifar", None, None, None, None),
    "cifar10": DatasetFacts(10, "cifar", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 50_000, 10_000),
    "cifar100": DatasetFacts(100, "cifar", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 50_000, 10_000),
    "imagenet": DatasetFacts(1000, "imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1_281_167, 50_000),
}


@dataclass(frozen=True)
class DataConfig:
    """What data a run sees. Where it lives on disk is not part of it (see `load_data`)."""

    dataset: str = "proxy"
    subset: int = 0  # train on a class-balanced subset of this many training images (0 = all)
    test_subset: int = 0  # evaluate on a class-balanced subset of this many test images (0 = all)
    proxy_train: int = 5000  # proxy only: images generated for training
    proxy_test: int = 2000  # proxy only: images generated for testing
    proxy_seed: int = 0  # proxy only: the data set is a pure function of this seed
    workers: int = 8  # ImageNet only: DataLoader worker processes (their count changes the augmentation draws)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise choice_error("dataset", self.dataset, list(DATASETS))
        check_fields(
            self,
            [
                *[
                    (name, 0 <= getattr(self, name) <= MAX_SUBSET, f"in [0, {MAX_SUBSET}] (0 = all)")
                    for name in ("subset", "test_subset")
                ],
                *[
                    (name, 1 <= getattr(self, name) <= MAX_PROXY_IMAGES, f"in [1, {MAX_PROXY_IMAGES}]")
                    for name in ("proxy_train", "proxy_test")
                ],
                ("proxy_seed", 0 <= self.proxy_seed <= MAX_SEED, f"in [0, {MAX_SEED}]"),
                ("workers", 0 <= self.workers <= MAX_WORKERS, f"in [0, {MAX_WORKERS}]"),
            ],
        )

    @property
    def num_classes(self) -> int:
        return DATASETS[self.dataset].num_classes

    @property
    def family(self) -> str:
        return DATASETS[self.dataset].family


@dataclass(frozen=True)
class TensorSplit:
    """Images held as one uint8 (N, 3, H, W) tensor with int64 labels (N,), on any device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> TensorSplit:
        return TensorSplit(self.images[index.to(self.images.device)], self.labels[index.to(self.labels.device)])

    def to(self, device: torch.device | str) -> TensorSplit:
        return TensorSplit(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class FolderSplit:
    """Images decoded from files by a torchvision dataset (ImageNet), read through a DataLoader."""

    dataset: torch.utils.data.Dataset
    labels: torch.Tensor
    workers: int

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> FolderSplit:
        return FolderSplit(torch.utils.data.Subset(self.dataset, index.tolist()), self.labels[index], self.workers)

    def to(self, device: torch.device | str) -> FolderSplit:
        return self


@dataclass(frozen=True)
class ImageData:
    name: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    train: TensorSplit | FolderSplit
    test: TensorSplit | FolderSplit

    def to(self, device: torch.device | str) -> ImageData:
        """The same data with its tensors moved to `device` once (a no-op for folder data)."""
        return dataclasses.replace(self, train=self.train.to(device), test=self.test.to(device))


def load_data(cfg: DataConfig, root: str | Path | None = None, download: bool = False) -> ImageData:
    """Load the data set `cfg` names; `root` is the directory holding CIFAR/ImageNet (unused for the proxy)."""
    facts = DATASETS[cfg.dataset]
    num_classes, mean, std = facts.num_classes, facts.mean, facts.std
    if cfg.dataset == "proxy":
        from tasbench.proxy_data import make_proxy

        train = TensorSplit(*make_proxy(cfg.proxy_train, derive_seed(cfg.proxy_seed, "proxy-train")))
        test = TensorSplit(*make_proxy(cfg.proxy_test, derive_seed(cfg.proxy_seed, "proxy-test")))
        pixels = train.images.double().div(255)
        mean = tuple(pixels.mean((0, 2, 3)).tolist())
        std = tuple(pixels.std((0, 2, 3)).tolist())
    else:
        if root is None:
            raise ConfigError(f"dataset {cfg.dataset!r} needs --data-dir (the directory that holds it)")
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"data directory {str(root)!r} is a file, not a directory")
        if not root.is_dir() and not (download and cfg.dataset != "imagenet"):
            raise ConfigError(f"data directory {str(root)!r} does not exist")
        if cfg.dataset == "imagenet":
            from tasbench.imagenet import image_folder

            train_set, test_set = image_folder(root, "train", True), image_folder(root, "val", False)
            train = FolderSplit(train_set, torch.tensor(train_set.targets), cfg.workers)
            test = FolderSplit(test_set, torch.tensor(test_set.targets), cfg.workers)
        else:
            _ensure_cifar(cfg.dataset, root, download)
            train = TensorSplit(*cifar.read_cifar(cfg.dataset, root, train=True))
            test = TensorSplit(*cifar.read_cifar(cfg.dataset, root, train=False))
    if cfg.subset:
        train = train.take(balanced_subset(train.labels, cfg.subset, num_classes, f"{cfg.dataset} training"))
    if cfg.test_subset:
        test = test.take(balanced_subset(test.labels, cfg.test_subset, num_classes, f"{cfg.dataset} test"))
    return ImageData(cfg.dataset, num_classes, mean, std, train, test)


def _ensure_cifar(dataset: str, root: Path, download: bool) -> None:
    missing = cifar.missing_files(dataset, root)
    if not missing:
        return
    title = cifar.TITLE[dataset]
    other = "cifar100" if dataset == "cifar10" else "cifar10"
    if not cifar.missing_files(other, root):  # a common slip: the other CIFAR, or a spec naming the wrong one
        raise ConfigError(
            f"data directory {str(root)!r} holds {cifar.TITLE[other]} ({cifar.LAYOUT[other][0]}/), "
            f"not {title}; give the directory that holds {cifar.LAYOUT[dataset][0]}/, or dataset "
            f"{other!r}"
        )
    if not download:
        raise ConfigError(
            f"{title} batch {str(missing[0])!r} is missing; extract the python version of {title} into "
            f"{str(root)!r} (it creates {cifar.LAYOUT[dataset][0]}/), or add --download"
        )
    from torchvision import datasets

    try:
        (datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100)(str(root), download=True)
    except Exception as e:  # no network, proxy refusal, disk full...: all leave the user with one thing to do
        raise ConfigError(
            f"could not download {title} into {str(root)!r} ({type(e).__name__}: {str(e)[:120]}); download the "
            f"python version from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there"
        ) from None


def balanced_subset(labels: torch.Tensor, n: int, num_classes: int, what: str) -> torch.Tensor:
    """Indices of `n` items, as close to n / num_classes per class as the data allow, the same for every run."""
    if n > len(labels):
        raise ConfigError(f"subset of {n} exceeds the {len(labels)} {what} images")
    labels = labels.cpu()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(derive_seed("subset", n)))
    by_class = [order[labels[order] == c] for c in range(num_classes)]
    quota = [n // num_classes + (c < n % num_classes) for c in range(num_classes)]
    chosen = [idx[:q] for idx, q in zip(by_class, quota)]
    short = n - sum(len(c) for c in chosen)
    if short:  # some class has too few items: fill from the remaining ones in the same random order
        taken = torch.zeros(len(labels), dtype=torch.bool)
        taken[torch.cat(chosen)] = True
        chosen.append(order[~taken[order]][:short])
    return torch.cat(chosen).sort().values


def normalizer(data: ImageData, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 (B, 3, H, W) -> float, standardised per channel, channels_last (faster convs on CPU and GPU).

    The statistics go to the device once per loader: a host-to-device copy per batch would stall a GPU stream.
    """
    mean = torch.tensor(data.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, 3, 1, 1)
    return lambda images: ((images.float().div_(255) - mean) / std).contiguous(memory_format=torch.channels_last)


def crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Pad-`pad` random crop + horizontal flip of a whole uint8 batch at once, on the batch's device.

    Each image gets its own offsets and flip; the flip costs nothing because it only reverses column indices.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=device)
    flip = torch.rand(b, 1, generator=generator, device=device) < 0.5
    rows = dy + torch.arange(h, device=device)
    cols = dx + torch.arange(w, device=device)
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=device).view(b, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


def num_train_batches(data: ImageData, batch_size: int, drop_last: bool = True) -> int:
    """Batches per epoch: 50,000 images at batch 256 make 195 (drop_last) or 196 (the last one of 80 images kept)."""
    return _num_batches(len(data.train), batch_size, drop_last)


def _num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return max(1, n // batch_size) if drop_last else -(-n // batch_size)


def train_batches(
    data: ImageData,
    batch_size: int,
    seed: int,
    epoch: int,
    device: torch.device,
    drop_last: bool = True,
    draws: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, augmented, normalised training batches; a pure function of (data, seed, epoch).

    By default the last partial batch is dropped so every step sees `batch_size` images (BN statistics stay
    comparable). With `draws`, the epoch is `draws` images drawn uniformly with replacement instead of a permutation
    (the architecture batches of the TAS release), cut into batches the same way.
    """
    split = data.train
    norm = normalizer(data, device)
    if isinstance(split, FolderSplit):
        loader = _folder_loader(
            split,
            batch_size,
            shuffle=True,
            seed=derive_seed(seed, "train-batches", epoch),
            drop_last=drop_last,
            draws=draws,
        )
        for images, labels in loader:
            yield norm(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True)
        return
    generator = torch.Generator(device=split.images.device).manual_seed(derive_seed(seed, "train-batches", epoch))
    if draws:
        order = torch.randint(len(split), (draws,), generator=generator, device=split.images.device)
    else:
        order = torch.randperm(len(split), generator=generator, device=split.images.device)
    for step in range(_num_batches(len(order), batch_size, drop_last)):
        index = order[step * batch_size : (step + 1) * batch_size]
        images = crop_flip(split.images[index], generator)
        yield norm(images.to(device)), split.labels[index].to(device)


def eval_batches(
    data: ImageData, batch_size: int, device: torch.device, split: str = "test"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every image of `split` once, in order, without augmentation."""
    part = getattr(data, split)
    norm = normalizer(data, device)
    if isinstance(part, FolderSplit):
        for images, labels in _folder_loader(part, batch_size, shuffle=False, seed=0):
            yield norm(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True)
        return
    for start in range(0, len(part), batch_size):
        images = part.images[start : start + batch_size]
        yield norm(images.to(device)), part.labels[start : start + batch_size].to(device)


def _folder_loader(
    split: FolderSplit, batch_size: int, shuffle: bool, seed: int, drop_last: bool | None = None, draws: int = 0
) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if draws:
        sampler = torch.utils.data.RandomSampler(
            split.dataset, replacement=True, num_samples=draws, generator=generator
        )
    return torch.utils.data.DataLoader(
        split.dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=shuffle if drop_last is None else drop_last,
        num_workers=split.workers,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
        persistent_workers=False,
    )

"""The search's data: the training split halved into a weight half and an architecture half, and each step's batches.

`split="official"` (default) follows the TAS release (`SearchDataset` in `lib/datasets/SearchDatasetWrap.py`, fed
by a fixed split file): the halves are class-stratified and fixed by a seed of their own, `split_seed` (111 in the
release), whatever the run's seed; each epoch visits every weight-half image once in a shuffled order, keeping the
last partial batch (the loader's `drop_last=False`), and pairs each weight image with an architecture image drawn
uniformly *with replacement* from the architecture half (`random.choice(valid_split)` per item). The run's seed
only orders the batches and draws the architecture images.

`split="random"`: the halves are a random permutation of the run's seed cut in two; each half is shuffled per
epoch, the last partial batch dropped, and the epoch has as many steps as the smaller half has full batches.

Either way an epoch's batches are a pure function of (seed, epoch), so a resumed search reads what an
uninterrupted one reads. CIFAR-10 (5,000 images per class) at batch 256 per half:

    >>> weights, arch = split_halves(cifar10, "official", split_seed=111, seed=0)
    >>> len(weights.train), len(arch.train), num_search_steps(weights, arch, 256, "official")
    (25000, 25000, 98)                # the 98th step has 168 images of each half
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

from tasbench.data import ImageData, num_train_batches, train_batches
from tasbench.errors import ConfigError
from tasbench.seeds import derive_seed, generator

SPLITS = ("official", "random")

Batch = tuple[torch.Tensor, torch.Tensor]


def split_halves(data: ImageData, split: str, split_seed: int, seed: int) -> tuple[ImageData, ImageData]:
    """The training split in two disjoint halves (weight half, architecture half), as `split` draws them.

    Official: within each class, a permutation drawn from `split_seed` gives half the images to the weight half and
    the rest to the architecture half; the odd image of the 1st, 3rd, ... class with an odd count goes to the weight
    half, that of the 2nd, 4th, ... to the architecture half, so the halves differ by at most one image.
    """
    labels = data.train.labels.cpu()
    if split == "official":
        g = generator(split_seed, "tas-split-stratified")
        weight, arch, odd = [], [], 0
        for c in labels.unique().tolist():
            members = (labels == c).nonzero().flatten()
            members = members[torch.randperm(len(members), generator=g)]
            cut = len(members) // 2 + (len(members) % 2) * (1 - odd)
            odd ^= len(members) % 2
            weight.append(members[:cut])
            arch.append(members[cut:])
        weight_index, arch_index = torch.cat(weight), torch.cat(arch)
    else:
        order = torch.randperm(len(labels), generator=generator(seed, "tas-split"))
        half = len(order) // 2
        weight_index, arch_index = order[:half], order[half:]
    if len(weight_index) == 0 or len(arch_index) == 0:
        raise ConfigError(f"the search needs at least 2 training images (one per half), got {len(labels)}")
    return (
        dataclasses.replace(data, train=data.train.take(weight_index.sort().values)),
        dataclasses.replace(data, train=data.train.take(arch_index.sort().values)),
    )


def num_search_steps(weight_half: ImageData, arch_half: ImageData, batch_size: int, split: str) -> int:
    """Steps per search epoch: one per weight batch (official), or per pair of full batches (random)."""
    if split == "official":
        return num_train_batches(weight_half, batch_size, drop_last=False)
    return min(num_train_batches(weight_half, batch_size), num_train_batches(arch_half, batch_size))


def epoch_size(train_images: int, batch_size: int, split: str) -> tuple[int, int]:
    """(steps, images through the search net) of one epoch on `train_images` training images, known before the
    halves are drawn (the dry run's estimate): official halves differ by at most one image and keep the partial
    batch, each weight image paired with one architecture image; random halves run full batch pairs only.

    >>> epoch_size(50_000, 256, "official"), epoch_size(50_000, 256, "random")
    ((98, 50000), (97, 49664))
    """
    if split == "official":
        weight = (train_images + 1) // 2
        return -(-weight // batch_size), 2 * weight
    weight, arch = train_images // 2, train_images - train_images // 2
    steps = min(max(1, weight // batch_size), max(1, arch // batch_size))
    return steps, steps * (min(batch_size, weight) + min(batch_size, arch))  # a half smaller than a batch: one batch


def search_batches(
    weight_half: ImageData,
    arch_half: ImageData,
    batch_size: int,
    split: str,
    seed: int,
    epoch: int,
    device: torch.device,
) -> Iterator[tuple[Batch, Batch]]:
    """Epoch `epoch`'s (weight batch, architecture batch) pairs, augmented and normalised, on `device`."""
    w_seed, a_seed = derive_seed(seed, "tas-w"), derive_seed(seed, "tas-a")
    if split == "official":
        weights = train_batches(weight_half, batch_size, w_seed, epoch, device, drop_last=False)
        archs = train_batches(
            arch_half, batch_size, a_seed, epoch, device, drop_last=False, draws=len(weight_half.train)
        )
    else:
        weights = train_batches(weight_half, batch_size, w_seed, epoch, device)
        archs = train_batches(arch_half, batch_size, a_seed, epoch, device)
    steps = num_search_steps(weight_half, arch_half, batch_size, split)
    for step, pair in enumerate(zip(weights, archs)):
        if step == steps:
            break
        yield pair

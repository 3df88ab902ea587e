"""ImageNet from the standard folder layout: `root/train/<wnid>/*.JPEG` and `root/val/<wnid>/*.JPEG`.

Decoding JPEGs is per-image work, so this path uses torchvision's `ImageFolder` with a `DataLoader` and worker
processes; the crops happen there and the batches arrive as uint8, to be normalised on the device like CIFAR's.
The standard recipe: RandomResizedCrop(224) + flip for training, Resize(256) + CenterCrop(224) for evaluation.
"""

from __future__ import annotations

from pathlib import Path

from tasbench.errors import ConfigError


def image_folder(root: str | Path, split: str, train: bool):
    """A torchvision `ImageFolder` over `root/split` yielding uint8 (3, 224, 224) tensors, with clear errors."""
    from torchvision import datasets, transforms

    folder = Path(root) / split
    if not folder.is_dir():
        raise ConfigError(
            f"ImageNet folder {str(folder)!r} does not exist; expected {root}/train/<class>/*.JPEG "
            f"and {root}/val/<class>/*.JPEG"
        )
    if train:
        tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()])
    else:
        tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    try:
        return datasets.ImageFolder(str(folder), transform=transforms.Compose([tf, transforms.PILToTensor()]))
    except (FileNotFoundError, RuntimeError) as e:
        raise ConfigError(f"ImageNet folder {str(folder)!r} holds no class folders of images ({e})") from None

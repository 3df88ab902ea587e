"""Read (and write) CIFAR-10/100 in the standard "python version" format, without executing anything from the files.

The format (https://www.cs.toronto.edu/~kriz/cifar.html, read the same way by `torchvision.datasets.CIFAR10`):
`cifar-10-batches-py/data_batch_1..5` and `test_batch`, or `cifar-100-python/train` and `test`; each a pickled dict
with `data`, a uint8 array of shape (N, 3072) holding the R, G and B planes of each 32x32 image in row-major order,
and `labels` (CIFAR-10) or `fine_labels` (CIFAR-100), a list of N ints.

The published files were pickled by Python 2, so their strings are byte strings that Python 3 reads as latin-1
(`encoding="latin1"`, as torchvision does). Pickle can run arbitrary code, so the reader unpickles with an
allow-list: dicts, lists, strings and the numpy functions that rebuild an array. A file that needs anything else is
refused, not executed. (`tasbench.testing.write_cifar` writes such files, for tests.)
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tasbench.errors import ConfigError
from tasbench.untrusted import CIFAR_BATCH, read_bytes

LAYOUT = {
    # name: (folder, training files, test files, label key, number of classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
}
META = {"cifar10": ("batches.meta", "label_names"), "cifar100": ("meta", "fine_label_names")}
TITLE = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}

# numpy >= 2 pickles arrays through numpy._core, older numpy (and the original CIFAR files) through numpy.core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        real_module, real_name = _ALLOWED_GLOBALS[(module, name)]
        return getattr(importlib.import_module(real_module), real_name)


def find_cifar_dir(dataset: str, root: str | Path) -> Path:
    """The folder holding the batch files: `root` itself or its standard sub-folder."""
    folder = LAYOUT[dataset][0]
    root = Path(root)
    return root if root.name == folder else root / folder


def missing_files(dataset: str, root: str | Path) -> list[Path]:
    _, train, test, *_ = LAYOUT[dataset]
    base = find_cifar_dir(dataset, root)
    # exists(), not is_file(): a directory or FIFO in a batch's place is reported as what it is when it is read
    return [base / name for name in train + test if not (base / name).exists()]


def read_cifar(dataset: str, root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,) for the train or test split."""
    _, train_files, test_files, label_key, classes = LAYOUT[dataset]
    base = find_cifar_dir(dataset, root)
    images, labels = [], []
    for name in train_files if train else test_files:
        x, y = read_batch(base / name, label_key, classes, TITLE[dataset])
        images.append(x)
        labels.append(y)
    if not sum(map(len, labels)):  # every batch well-formed but empty: nothing to train or test on
        files = ", ".join(train_files if train else test_files)
        raise ConfigError(
            f"{TITLE[dataset]} in {str(base)!r} holds no {'training' if train else 'test'} images ({files}: 0 images)"
        )
    return torch.cat(images), torch.cat(labels)


def read_batch(path: Path, label_key: str, classes: int, title: str) -> tuple[torch.Tensor, torch.Tensor]:
    def corrupt(why: str) -> ConfigError:
        return ConfigError(f"{title} batch {str(path)!r} is corrupt: {why}")

    data = read_bytes(path, dataclasses.replace(CIFAR_BATCH, name=f"{title} batch"))
    try:
        raw = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except MemoryError:  # the pickle declares more than fits; the file itself is bounded by CIFAR_BATCH
        raise corrupt("unpickling it ran out of memory (a real batch unpickles to ~31 MB)") from None
    except Exception as e:  # truncated or foreign pickles fail in many ways; all mean the same to the user
        raise corrupt(f"not a readable pickle ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(raw, dict):
        raise corrupt(f"holds a {type(raw).__name__}, expected a dict")
    missing = [key for key in ("data", label_key) if key not in raw]
    if missing:
        other = {"labels": "fine_labels", "fine_labels": "labels"}[label_key]
        hint = f"; its {other!r} say it is the other CIFAR" if other in raw else ""
        raise corrupt(f"it has no {missing[0]!r} key (keys: {', '.join(map(str, sorted(raw)))}){hint}")
    data, labels = raw["data"], raw[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise corrupt(f"'data' is a {what}, expected uint8 (N, 3072)")
    labels = _integer_labels(labels, label_key, corrupt)
    if len(labels) != data.shape[0]:
        raise corrupt(f"{data.shape[0]} images but {label_key!r} has {len(labels)} entries")
    if labels and (min(labels) < 0 or max(labels) >= classes):  # Python ints: 2**70 is named, not overflowed
        raise corrupt(f"labels span {min(labels)}..{max(labels)}, expected 0..{classes - 1}")
    return torch.from_numpy(data.copy()).view(-1, 3, 32, 32), torch.tensor(labels, dtype=torch.int64)


def _integer_labels(labels: object, key: str, corrupt: Callable[[str], ConfigError]) -> list[int]:
    """The labels as Python ints; floats (which numpy would truncate: 2.7 -> 2), strings and nested lists are
    refused rather than converted."""
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        return labels.tolist()
    if isinstance(labels, list):
        bad = next((v for v in labels if not isinstance(v, int) or isinstance(v, bool)), None)
        if bad is None:
            return labels
        raise corrupt(f"{key!r} holds {bad!r} ({type(bad).__name__}), expected a list of integers")
    raise corrupt(f"{key!r} is a {type(labels).__name__}, expected a list of integers")

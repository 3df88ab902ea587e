"""Helpers for tests and demos, not used by any tas-bench command: small CIFAR files in the real on-disk format, a
one-off normalisation of a batch, and the parameter count of a built module."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import torch
from torch import nn

from tasbench.cifar import LAYOUT, META
from tasbench.data import ImageData, normalizer


def write_cifar(dataset: str, root: str | Path, splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Path:
    """Write `{"train": (images, labels), "test": ...}` in the real CIFAR format, Python-2-style pickles byte for byte
    of the kind the published files hold.

    Training images are spread over the data set's training files as evenly as the real ones are; the meta file
    names the classes `class_0`, `class_1`, ...
    """
    folder, train_files, test_files, label_key, classes = LAYOUT[dataset]
    base = Path(root) / folder
    base.mkdir(parents=True, exist_ok=True)
    meta_file, names_key = META[dataset]
    (base / meta_file).write_bytes(python2_pickle({names_key: [f"class_{c}" for c in range(classes)]}))
    for split, files in (("train", train_files), ("test", test_files)):
        images, labels = splits[split]
        for i, (x, y) in enumerate(zip(images.tensor_split(len(files)), labels.tensor_split(len(files)))):
            batch = {
                "batch_label": f"{split} batch {i + 1}",
                label_key: [int(v) for v in y],
                "data": x.reshape(len(x), 3072).numpy(),
                "filenames": [f"image_{j}.png" for j in range(len(x))],
            }
            (base / files[i]).write_bytes(python2_pickle(batch))
    return base


def python2_pickle(obj: object) -> bytes:
    """Pickle `obj` as Python 2's cPickle did (protocol 2, every string a byte string), like the real CIFAR files."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


class _Python2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can be extended
    def _save_py2_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, str: _save_py2_string, bytes: _save_py2_string}


def normalize(images: torch.Tensor, data: ImageData) -> torch.Tensor:
    """One batch through `normalizer` (for one-off use; loaders build the normalizer once)."""
    return normalizer(data, images.device)(images)


def count_params(model: nn.Module) -> int:
    """The parameters of a built module, counted: what `flops.params(arch)` must equal."""
    return sum(p.numel() for p in model.parameters())

"""Checkpoints and model files: saved atomically, loaded with `torch.load(weights_only=True)` only.

A model file holds everything needed to rebuild the net without the code that pruned it::

    {"format": "tas-bench-model/1", "arch": {...Arch.to_dict()...}, "state_dict": {...}}

so `load_model("runs/train/3f2a.../model.pt")` returns `(arch, module)` for any pruned shape.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from tasbench.arch import Arch
from tasbench.atomic import save_torch
from tasbench.errors import ConfigError
from tasbench.resnet import build_resnet

MODEL_FORMAT = "tas-bench-model/1"


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict of tensors and plain data; anything else (e.g. a pickled object) is refused."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"checkpoint {str(path)!r} is a directory, not a checkpoint file")
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise ConfigError(f"checkpoint {str(path)!r} is truncated or not a PyTorch file (not a torch.save archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only=True refuses every global it does not know, which is how code hidden in a pickle is kept out.
        # Name the refused global (e.g. posix.system) when torch's message gives it.
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(e))
        reason = f"it would import {found.group(1)}" if found else (str(e).strip().splitlines() or [""])[0][:160]
        raise ConfigError(
            f"checkpoint {str(path)!r} is not a plain tensor checkpoint; refusing to unpickle it ({reason})"
        ) from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"checkpoint {str(path)!r} is truncated or not a PyTorch file ({first[:160]})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict")
    return obj


def save_model(path: str | Path, arch: Arch, model: nn.Module, **extra: object) -> None:
    """Write a model file (arch + weights + any JSON-like extras) atomically."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_torch(path, {"format": MODEL_FORMAT, "arch": arch.to_dict(), "state_dict": state, **extra})


def load_model(path: str | Path) -> tuple[Arch, nn.Module]:
    """Rebuild `(arch, module)` from a model file written by `save_model`."""
    ckpt = load_checkpoint(path)
    if ckpt.get("format") != MODEL_FORMAT:
        raise ConfigError(
            f"{str(path)!r} is not a tas-bench model file (format {ckpt.get('format')!r}, expected {MODEL_FORMAT!r})"
        )
    try:
        arch = Arch.from_dict(ckpt["arch"])
    except ConfigError as e:
        raise ConfigError(f"model file {str(path)!r}: {e}") from None
    model = build_resnet(arch)
    load_state(model, ckpt.get("state_dict"), f"model file {str(path)!r}")
    return arch, model


def load_state(model: nn.Module, state: dict, source: str) -> None:
    """`model.load_state_dict(state)` with one clear line when keys or shapes differ."""
    if not isinstance(state, dict):
        raise ConfigError(f"{source}: 'state_dict' is {type(state).__name__}, expected a dict of tensors")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        key = (missing or unexpected)[0]
        raise ConfigError(
            f"{source}: weights do not fit this network ({'missing' if missing else 'unexpected'} {key!r})"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.shape != own[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(f"{source}: weights do not fit this network ({key!r} is {shape}, the network has "
                              f"{tuple(own[key].shape)})")  # fmt: skip
    model.load_state_dict(state)

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
from tasbench.untrusted import CHECKPOINT, check_file, human_size

MODEL_FORMAT = "tas-bench-model/1"


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict of tensors and plain data; anything else (e.g. a pickled object) is refused.

    The archive's entries are checked before anything is inflated: what they declare may not exceed the checkpoint
    limit (a 29 MB zip can declare 6 GB of zeros), and each must lie inside the file."""
    path = Path(path)
    size = check_file(path, CHECKPOINT)
    inflated = _check_archive(path, size)
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
    except MemoryError:
        raise _out_of_memory(path, inflated) from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError) as e:
        if _OUT_OF_MEMORY.search(str(e)):  # torch's allocator reports a failed allocation as a RuntimeError
            raise _out_of_memory(path, inflated) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"checkpoint {str(path)!r} is truncated or not a PyTorch file ({first[:160]})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a dict")
    return obj


def require(ckpt: dict, keys: tuple[str, ...], source: str) -> None:
    """A ConfigError naming the first of `keys` that the checkpoint `source` lacks, and what it holds instead."""
    missing = [key for key in keys if key not in ckpt]
    if missing:
        held = ", ".join(map(repr, sorted(map(str, ckpt)))) or "nothing"
        raise ConfigError(f"{source} has no {missing[0]!r} entry (it holds {held}); was it written by tas-bench?")


def resume_state(path: str | Path | None, run_config: dict, keys: tuple[str, ...], what: str) -> dict | None:
    """The state a resumed loop (training, a TAS search) goes on from: the checkpoint at `path` if there is one (None
    if not), refused with one line if it was written for another `run_config` or lacks one of `keys`. Its writer
    stores `run_config` under "config" (`save_torch(path, {..., "config": run_config})`)."""
    if path is None or not Path(path).exists():
        return None
    state = load_checkpoint(path)
    if state.get("config") != run_config:
        raise ConfigError(
            f"{what} {str(path)!r} belongs to another configuration; delete it or rerun with the "
            "configuration it was written for"
        )
    require(state, keys, f"{what} {str(path)!r}")
    return state


# "DefaultCPUAllocator: can't allocate memory", "not enough memory", CUDA's "out of memory"
_OUT_OF_MEMORY = re.compile(r"can't allocate memory|not enough memory|out of memory", re.IGNORECASE)
# torch.save writes its entries stored; deflate is what zip tools (and torch's reader) also know. Anything else is
# not a checkpoint.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def _check_archive(path: Path, size: int) -> int:
    """The bytes a checkpoint's entries inflate to; refused if they are not a torch.save archive or exceed the
    limit."""
    try:
        with zipfile.ZipFile(path) as archive:  # reads the central directory only, nothing is inflated
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):  # torch.save has written zip archives since 1.6
        raise ConfigError(
            f"checkpoint {str(path)!r} is truncated or not a PyTorch file (not a torch.save archive)"
        ) from None
    for entry in entries:
        if entry.compress_type not in _ZIP_METHODS:
            raise ConfigError(
                f"checkpoint {str(path)!r} is not a PyTorch file (entry {entry.filename!r} uses zip "
                f"method {entry.compress_type}; torch.save stores its entries)"
            )
        if entry.header_offset + entry.compress_size > size:
            raise ConfigError(
                f"checkpoint {str(path)!r} is truncated or not a PyTorch file (entry "
                f"{entry.filename!r} ends past the end of the file)"
            )
    inflated = sum(entry.file_size for entry in entries)
    if inflated > CHECKPOINT.limit:
        raise ConfigError(
            f"checkpoint {str(path)!r} ({human_size(size)}) inflates to {human_size(inflated)}; "
            f"checkpoints are limited to {human_size(CHECKPOINT.limit)}"
        )
    return inflated


def _out_of_memory(path: Path, inflated: int) -> ConfigError:
    # Not "truncated": the archive checked out, and calling a sound file broken would send the user the wrong way.
    return ConfigError(
        f"checkpoint {str(path)!r} ({human_size(inflated)} of entries) does not fit in memory: "
        f"loading it ran out; free memory or load it on a machine with more"
    )


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
    require(ckpt, ("arch",), f"model file {str(path)!r}")
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
            raise ConfigError(
                f"{source}: weights do not fit this network ({key!r} is {shape}, the network has "
                f"{tuple(own[key].shape)})"
            )
    model.load_state_dict(state)

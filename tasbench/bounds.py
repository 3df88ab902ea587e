"""Limits on every number a user gives, in one place: finite where infinity means nothing, and an upper bound
wherever a size could exhaust memory or time before anything useful happens.

A config dataclass checks its fields with `check_fields` in `__post_init__`; a command-line flag that no dataclass
carries is parsed with `int_flag` / `float_flag` / `path_flag` as its argparse `type=`, so a bad value stops the
command before any work (argparse prints `argument --workers: must be in [1, 1024], got 0`, exit status 2).
Every message names the field, the allowed range and the value given:

    >>> TrainConfig(epochs=10**12)
    ConfigError: epochs must be in [1, 10000], got 1000000000000
    >>> TrainConfig(lr=float("inf"))
    ConfigError: lr must be a finite number, got inf
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable

from tasbench.errors import ConfigError

# The official CIFAR recipes train 300 + 5 epochs and search 600; ImageNet's run 120.
MAX_EPOCHS = 10_000
# A CIFAR ResNet's batch of 65,536 images is ~0.8 GB of input alone; larger ones only fail in the allocator.
MAX_BATCH = 65_536
# Seeds enter torch as int64.
MAX_SEED = 2**63 - 1
# Proxy images are generated in memory: 200,000 of 32x32x3 are 0.6 GB of uint8 (CIFAR's training set has 50,000).
MAX_PROXY_IMAGES = 200_000
# A class-balanced subset of a data set (ImageNet's training set: 1,281,167 images).
MAX_SUBSET = 100_000_000
# Worker processes and torch threads of one machine.
MAX_WORKERS = 1024
MAX_THREADS = 1024
# Runs one sweep expands to: the CIFAR-10 table is 117; a spec beyond this is a typo (seeds: [0, ..., 10**6]).
MAX_RUNS = 10_000


def check_fields(config: object, checks: list[tuple[str, bool, str]]) -> None:
    """Every float field of dataclass `config` is finite, then each `(name, ok, allowed)` of `checks` holds."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value}")
    for name, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"{name} must be {allowed}, got {getattr(config, name)}")


def int_in(value: object, low: int, high: int) -> bool:
    """`value` is an int (not a bool) in [low, high]: the check of an int option given to a dataclass directly."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def int_flag(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type=` for an int in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    return parse


def float_flag(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse `type=` for a finite float in [low, high] (or (low, high] with `low_open`)."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {shown}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number in {shown}, got {text!r}")
        if value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"must be in {shown}, got {value:g}")
        return value

    return parse


def path_flag(text: str) -> str:
    """An argparse `type=` for a path: not empty (`--out ''` would write into the current directory), no NUL."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a path, got an empty string")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"must be a path, got {text!r} (it holds a NUL character)")
    return text

"""Config flows one way: command-line flags and `key=value` strings into frozen dataclasses, type-checked.

Each field of a config dataclass becomes a flag (`TrainConfig.weight_decay` -> `--weight-decay`); bools become
`--nesterov/--no-nesterov`. Unknown keys and values of the wrong type are errors that name them:

    >>> parse_overrides(TrainConfig, ["epochs=30", "lr=0.05"])
    TrainConfig(epochs=30, batch_size=128, lr=0.05, ...)
    >>> parse_overrides(TrainConfig, ["epoch=30"])
    ConfigError: unknown TrainConfig key 'epoch'; allowed: epochs, batch_size, lr, ...
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from tasbench.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one `--flag` per field of dataclass `cls`; flags left out of a command line stay None."""
    group = parser.add_argument_group(cls.__name__)
    for f, kind in _fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default: {f.default}")
        else:
            group.add_argument(
                flag, type=kind, default=None, metavar=kind.__name__.upper(), help=f"default: {f.default}"
            )


def from_namespace(cls: type, args: argparse.Namespace, **fixed: object):
    """Build `cls` from the flags that were given (the rest keep their defaults), plus `fixed` values."""
    given = {f.name: getattr(args, f.name) for f, _ in _fields(cls) if getattr(args, f.name, None) is not None}
    return cls(**{**given, **fixed})


def parse_overrides(cls: type, pairs: list[str]):
    """Build `cls` from `["key=value", ...]`, converting each value to the field's type."""
    kinds = {f.name: kind for f, kind in _fields(cls)}
    values = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"option {pair!r} is not of the form key=value")
        if key not in kinds:
            allowed = ", ".join(kinds) if kinds else "none"
            raise ConfigError(f"unknown {cls.__name__} key {key!r}; allowed: {allowed}")
        values[key] = coerce(kinds[key], raw, key)
    return cls(**values)


def coerce(kind: type, raw: str, key: str):
    """`raw` as a `kind` (int, float, str or bool), or a ConfigError naming the key and the value."""
    if kind is bool:
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"{key} must be true or false, got {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{key} must be {'an' if kind is int else 'a'} {kind.__name__}, got {raw!r}") from None


def _fields(cls: type) -> list[tuple[dataclasses.Field, type]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]

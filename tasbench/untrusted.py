"""Reading files a user hands us: regular files only, and no more bytes than their kind can need.

Every reader of a user's file (a sweep spec, a TAS .config, a checkpoint, a CIFAR batch, the paper CSV, stored
regression results, a W&B run log) goes through `read_bytes` or `check_file` with the file's `FileKind`:

    >>> read_bytes("benchmarks/proxy.yaml", SPEC)          # the bytes, at most SPEC.limit of them
    >>> read_bytes("/dev/zero", SPEC)
    ConfigError: sweep spec '/dev/zero' is a character device, not a YAML file

The type is checked with `stat` before anything is opened, so a FIFO cannot block the open, and /dev/zero or a
socket is never read. A file over its kind's limit is refused from its size before reading; a file that grows while
it is read is cut off at limit + 1 bytes and refused the same way. Sweep specs and `--set` values are parsed by
`load_yaml`, which also refuses what a small file could blow up: YAML aliases (the "billion laughs", an 800-byte
spec that expands to gigabytes) and mappings that name one key twice (where YAML silently keeps the last).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

from tasbench.errors import ConfigError

KB, MB, GB = 10**3, 10**6, 10**9


@dataclass(frozen=True)
class FileKind:
    """What a file is to the user (`name` starts every message about it) and the most bytes one may hold."""

    name: str  # "sweep spec"
    plural: str  # "specs", as in "specs are limited to 1 MB"
    expected: str  # "a YAML file", as in "is a directory, not a YAML file"
    limit: int  # bytes


# The shipped specs and .configs are 1-3 KB; a thousand times that is still a hand-written file.
SPEC = FileKind("sweep spec", "specs", "a YAML file", 1 * MB)
TAS_CONFIG = FileKind("TAS config file", "TAS configs", "a .config file", 1 * MB)
# A real CIFAR batch is 31 MB (10,000 images of 3,072 bytes; CIFAR-100's train file 155 MB).
CIFAR_BATCH = FileKind("CIFAR batch", "CIFAR batches", "a CIFAR batch file", 200 * MB)
# ResNet-50's weights are ~100 MB, a training checkpoint with SGD momentum ~200 MB, with Adam ~300 MB; a ResNet-152
# or a wide net with optimizer state stays under 1 GB. The bound applies to the file and to what its entries inflate to.
CHECKPOINT = FileKind("checkpoint", "checkpoints", "a checkpoint file", 4 * GB)
PAPER_CSV = FileKind("paper results", "paper results files", "a CSV file", 10 * MB)  # the shipped one is 9 KB
RUN_JSON = FileKind("run file", "run files", "a JSON file", 50 * MB)  # a run's metrics.json, params.json (~10 kB)
THROUGHPUT_JSON = FileKind("throughput file", "throughput files", "a JSON file", 1 * MB)  # `bench gpu`: ~2 kB
REGRESSION_JSON = FileKind("stored regression results", "stored regression results", "a JSON file", 50 * MB)

_NOT_REGULAR = [
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
]


def human_size(n: int) -> str:
    """Decimal units as `ls -h --si` gives them: 3.2 MB, 4 GB, 812 bytes."""
    for unit, size in (("GB", GB), ("MB", MB), ("kB", KB)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def check_file(path: str | Path, kind: FileKind) -> int:
    """The size of `path`, a regular file of at most `kind.limit` bytes; else a ConfigError that says what it is.

    For readers that hand the path to a library (torch.load, pandas): check first, then let it open the file."""
    try:
        info = os.stat(path)  # follows symlinks: a link to /dev/zero is the device
    except FileNotFoundError:
        raise ConfigError(f"{kind.name} {str(path)!r} does not exist") from None
    except OSError as e:
        raise ConfigError(f"{kind.name} {str(path)!r} cannot be read ({e.strerror})") from None
    _check_stat(path, info, kind)
    return info.st_size


def read_bytes(path: str | Path, kind: FileKind) -> bytes:
    """The content of `path`, checked as `check_file` does, read with at most `kind.limit` + 1 bytes in memory."""
    check_file(path, kind)
    try:
        # O_NONBLOCK: should a FIFO replace the file after the check, open() returns at once instead of waiting.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            _check_stat(path, os.fstat(fd), kind)  # the file opened is the one checked
            data = f.read(kind.limit + 1)
    except OSError as e:
        raise ConfigError(f"{kind.name} {str(path)!r} cannot be read ({e.strerror})") from None
    if len(data) > kind.limit:  # it grew since the check
        raise _too_large(path, kind, f"over {human_size(kind.limit)}")
    return data


def read_text(path: str | Path, kind: FileKind) -> str:
    """`read_bytes` decoded as UTF-8; a file that is not says where it stops being text."""
    data = read_bytes(path, kind)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{kind.name} {str(path)!r} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def _check_stat(path: str | Path, info: os.stat_result, kind: FileKind) -> None:
    for test, what in _NOT_REGULAR:
        if test(info.st_mode):
            raise ConfigError(f"{kind.name} {str(path)!r} is {what}, not {kind.expected}")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{kind.name} {str(path)!r} is not a regular file, not {kind.expected}")
    if info.st_size > kind.limit:
        raise _too_large(path, kind, human_size(info.st_size))


def _too_large(path: str | Path, kind: FileKind, size: str) -> ConfigError:
    return ConfigError(f"{kind.name} {str(path)!r} is {size}; {kind.plural} are limited to {human_size(kind.limit)}")


# --- YAML -------------------------------------------------------------------------------------------------------


class YAMLRefused(yaml.MarkedYAMLError):
    """Valid YAML that a spec may not use (an alias, a key given twice), with where it is."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases or duplicate keys, reading `5e-1` as the float YAML 1.2 makes it."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            # Refused before it is resolved: an alias to a list of aliases is how 800 bytes become gigabytes.
            why = f"YAML aliases (*{event.anchor}) are not allowed; write the value out"
            raise YAMLRefused(problem=why, problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                break
            if duplicate:
                raise YAMLRefused(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML's schema) wants a dot in a float, so `5e-1` and `1e6` would be strings; YAML 1.2 reads them as
# floats, as any reader of a spec would. Integers still resolve first: `5` stays an int.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str):
    """`yaml.safe_load(text)` without aliases, duplicate keys or YAML 1.1's string `5e-1`.

    Raises `yaml.YAMLError`; `yaml_problem` says what and where, for the caller to put behind the file's name."""
    loader = _StrictLoader(text)  # as PyYAML's own load() does, with this loader
    try:
        return loader.get_single_data()
    except RecursionError:  # the composer recurses once per level: `[[[[...` a thousand deep ends Python's stack
        raise YAMLRefused(problem="nested too deeply (lists or mappings some 1000 levels deep)") from None
    finally:
        loader.dispose()


def yaml_problem(e: yaml.YAMLError, text: str) -> tuple[str, str]:
    """`(where, what)` of a YAML error: ("line 5, column 3", "duplicate key 'seeds'"); where is "" if unknown."""
    mark = getattr(e, "problem_mark", None)
    if isinstance(e, yaml.reader.ReaderError):  # a control character: the reader gives an offset, not a line
        before = text[: e.position]
        line, column = before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1
        return f"line {line}, column {column}", f"control character {chr(e.character)!r} is not allowed"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return where, getattr(e, "problem", None) or type(e).__name__

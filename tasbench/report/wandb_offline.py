"""Read offline W&B runs (`offline-run-*/run-<id>.wandb`) without a server: config, history and summary.

The wandb SDK has no public reader for these files. A `.wandb` file is a LevelDB-style record log, as the SDK
writes it (wandb's `sdk/internal/datastore.py` up to 0.18; the Go `wandb-core` service since): a 7-byte file header
(`:W&B`, magic 0xBEE1 little-endian, version 0), then 32 KiB blocks of chunks, each with a 7-byte header
(CRC-32 4 bytes, length 2, type 1: FULL=1, FIRST=2, MIDDLE=3, LAST=4); a block's last < 7 bytes are zero padding.
The CRC is zlib's crc32 of the data, seeded with the crc32 of the type byte. Each record is a protobuf
`wandb.proto.wandb_internal_pb2.Record`: the SDK's own definitions, so the field layout follows the installed SDK.

    >>> run = read_run("runs/wandb/wandb/offline-run-20261125_223953-x4etdshw")
    >>> run["config"]["hash"], run["summary"]["top1"], run["history"][0]["retrain/test_top1"]
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from tasbench.errors import ConfigError
from tasbench.untrusted import WANDB_LOG, read_bytes

FILE_HEADER = struct.Struct("<4sHB")
FILE_IDENT, FILE_MAGIC, FILE_VERSION = b":W&B", 0xBEE1, 0
CHUNK_HEADER = struct.Struct("<IHB")
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> Iterator[bytes]:
    """The raw records of a `.wandb` file, checksums verified; a torn last record (a killed writer) ends the log."""
    data = read_bytes(path, WANDB_LOG)
    if len(data) < FILE_HEADER.size:
        raise ConfigError(f"{str(path)!r} is not a W&B run file (too short)")
    ident, magic, version = FILE_HEADER.unpack_from(data)
    if (ident, magic) != (FILE_IDENT, FILE_MAGIC):
        raise ConfigError(f"{str(path)!r} is not a W&B run file (header {data[:7]!r})")
    if version != FILE_VERSION:
        raise ConfigError(f"{str(path)!r} is W&B log format version {version}; this reader knows {FILE_VERSION}")
    pos, pending = FILE_HEADER.size, None
    while pos + CHUNK_HEADER.size <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER.size:  # the block's tail is padding
            pos += left_in_block
            continue
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        chunk = data[pos + CHUNK_HEADER.size : pos + CHUNK_HEADER.size + length]
        if len(chunk) < length or kind not in (FULL, FIRST, MIDDLE, LAST):
            return  # a partly written tail
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            raise ConfigError(f"{str(path)!r} is corrupt: bad checksum at byte {pos}")
        pos += CHUNK_HEADER.size + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif pending is not None:
            pending += chunk
            if kind == LAST:
                yield pending
                pending = None


def read_run(run_dir: str | Path) -> dict:
    """`{"id", "name", "group", "config", "history", "summary", "complete"}` of one offline run directory.

    `complete` says the log holds the run's exit record. The SDK's service process writes the log asynchronously, so
    right after `finish()` a run can still be incomplete on disk (seen here on a loaded machine).
    """
    from wandb.proto import wandb_internal_pb2  # the installed SDK's record definitions

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise ConfigError(f"{str(run_dir)!r} holds no run-*.wandb file (not an offline W&B run directory)")
    out = {"id": None, "name": None, "group": None, "config": {}, "history": [], "summary": {}, "complete": False}
    for raw in records(files[0]):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group)
            _update(out["config"], record.run.config.update)
            _update(out["summary"], record.run.summary.update)
        elif kind == "config":
            _update(out["config"], record.config.update)
        elif kind == "history":
            row = {}
            _update(row, record.history.item)
            out["history"].append(row)
        elif kind == "summary":
            _update(out["summary"], record.summary.update)
        elif kind == "exit":
            out["complete"] = True
    # W&B wraps each config value as {"value": ..., "desc": ...}; keep the values.
    out["config"] = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in out["config"].items()}
    return out


def _update(target: dict, items) -> None:
    for item in items:
        key = item.key or "/".join(item.nested_key)
        target[key] = json.loads(item.value_json)


def offline_runs(directory: str | Path) -> list[dict]:
    """Every offline run under `directory` (searched recursively), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"W&B directory {str(directory)!r} does not exist")
    return [read_run(d) for d in sorted(p.parent for p in directory.rglob("run-*.wandb"))]

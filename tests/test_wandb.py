"""W&B: runs logged offline by a sweep are read back from their .wandb files and compared with the run directories."""

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from runner_helpers import LATENCY, write_spec

from tasbench.cli import main
from tasbench.errors import ConfigError
from tasbench.report.wandb_offline import BLOCK, CHUNK_HEADER, FILE_HEADER, offline_runs, records

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_offline_round_trip_and_compare(capsys, tmp_path):
    spec, root = str(write_spec(tmp_path)), tmp_path / "runs"
    threads = ["--threads", "1"]
    assert main(["sweep", spec, "--out", str(root), "--wandb", "offline", *LATENCY, *threads]) == 0
    local = {r["hash"]: r for r in json.loads(capsys.readouterr()[0])["runs"]}
    logged = offline_runs(root / "wandb")
    for _ in range(600):  # W&B's service process may still be writing the logs after finish() returned
        if len(logged) == 2 and all(run["complete"] for run in logged):
            break
        time.sleep(0.1)
        logged = offline_runs(root / "wandb")
    assert len(logged) == 2 and all(run["complete"] for run in logged)
    for run in logged:
        h = run["config"]["hash"]
        metrics = json.loads((root / "uniform" / h / "metrics.json").read_text())
        assert run["summary"]["top1"] == metrics["top1"] and run["summary"]["macs"] == local[h]["macs"]
        assert run["config"]["ratio"] == metrics["ratio"]
        assert run["group"] == f"proxy/resnet20/Uniform/{metrics['ratio']}"
        assert [row["retrain/test_top1"] for row in run["history"]] == [
            float(line.split(",")[5]) for line in (root / "uniform" / h / "log.csv").read_text().splitlines()[1:]
        ]  # one history row per retraining epoch, with the logged values
    assert main(["compare", "--runs", str(root), "--wandb-dir", str(root / "wandb")]) == 0
    result = json.loads(capsys.readouterr()[0])
    assert result["compared"] == 2 and result["differ"] == 0
    assert all(r["delta_top1_mean"] == 0 and r["found_in"] == "both" for r in result["rows"])
    # a local result that moved by more than the tolerance is flagged; the W&B side is untouched
    path = root / "uniform" / logged[0]["config"]["hash"] / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "top1": logged[0]["summary"]["top1"] + 1.0}))
    main(["compare", "--runs", str(root), "--wandb-dir", str(root / "wandb"), "--tolerance", "0.5"])
    out, table = capsys.readouterr()
    result = json.loads(out)
    assert result["differ"] == 1 and [r["delta_top1_mean"] for r in result["rows"] if r["differs"]] == [-1.0]
    assert "| proxy" in table


def write_log(path, payloads: list[bytes]) -> None:
    """A .wandb record log as the SDK writes it: chunks split across 32 KiB blocks, padded block tails."""
    out = bytearray(FILE_HEADER.pack(b":W&B", 0xBEE1, 0))
    for payload in payloads:
        first = True
        while True:
            room = BLOCK - len(out) % BLOCK
            if room < CHUNK_HEADER.size:
                out += b"\0" * room
                continue
            chunk, payload = payload[: room - CHUNK_HEADER.size], payload[room - CHUNK_HEADER.size :]
            kind = (1 if not payload else 2) if first else (4 if not payload else 3)
            out += struct.pack("<IHB", zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF, len(chunk), kind)
            out += chunk
            first = False
            if not payload:
                break
    path.write_bytes(bytes(out))


def test_records_span_blocks_and_a_torn_tail_is_dropped(tmp_path):
    payloads = [b"a" * 100, bytes(range(256)) * 300, b"b" * (BLOCK - 7 - 7 - 100 - 7 - 3), b"c" * 10]
    write_log(tmp_path / "run-x.wandb", payloads)
    assert list(records(tmp_path / "run-x.wandb")) == payloads
    data = (tmp_path / "run-x.wandb").read_bytes()
    (tmp_path / "torn.wandb").write_bytes(data[:-5])  # killed while writing the last record
    assert list(records(tmp_path / "torn.wandb")) == payloads[:-1]
    flipped = bytearray(data)
    flipped[20] ^= 0xFF
    (tmp_path / "bad.wandb").write_bytes(bytes(flipped))
    with pytest.raises(ConfigError, match="is corrupt: bad checksum at byte 7"):
        list(records(tmp_path / "bad.wandb"))
    (tmp_path / "other.wandb").write_bytes(b"PK\x03\x04 not a log")
    with pytest.raises(ConfigError, match="is not a W&B run file"):
        list(records(tmp_path / "other.wandb"))


@pytest.mark.slow
def test_an_unreachable_wandb_project_is_one_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    (tmp_path / "runs").mkdir()
    code = main(["compare", "--runs", str(tmp_path / "runs"), "--project", "nobody/nothing", "--timeout", "3"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("tas-bench: error: cannot read W&B project 'nobody/nothing': ")


@pytest.mark.slow
def test_unreachable_wandb_online_logs_offline_and_says_how_to_sync(capsys, tmp_path, monkeypatch):
    """Online mode with no server to reach: the sweep finishes, results stay local, one warning per run."""
    from tasbench.report import wandb_log

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(wandb_log, "_online_failed", [])  # this process has not failed online before
    spec, root = str(write_spec(tmp_path)), tmp_path / "runs"
    began = time.monotonic()
    assert (
        main(
            ["sweep", spec, "--out", str(root), "--wandb", "online", "--wandb-timeout", "3", *LATENCY, "--threads", "1"]
        )
        == 0
    )
    seconds = time.monotonic() - began
    out, err = capsys.readouterr()
    runs = json.loads(out)["runs"]
    assert len(runs) == 2 and all((root / "uniform" / r["hash"] / "metrics.json").exists() for r in runs)
    warnings = [line for line in err.splitlines() if line.startswith("tas-bench: warning: ")]
    assert len(warnings) == 2 and "Traceback" not in err
    for line, run in zip(warnings, runs):
        assert "W&B unreachable or misconfigured in online mode (" in line and "logged offline instead" in line
        assert f"Results are in {root / 'uniform' / run['hash']}; log them to W&B later with: wandb sync " in line
        sync_dir = line.rsplit("wandb sync ", 1)[1]
        assert sync_dir.startswith(str(root / "wandb" / "wandb" / "offline-run-"))
        assert list(Path(sync_dir).glob("*.wandb"))  # what `wandb sync` uploads is there
    assert seconds < 60  # one timed-out online start, not one per run


@pytest.mark.slow
def test_online_without_an_api_key_logs_offline(tmp_path):
    """Misconfigured rather than unreachable: no API key anywhere. The same fallback, at once. A process of its own:
    W&B's service keeps the environment of the process's first start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_BASE_URL="http://127.0.0.1:9")  # no key, no ~/.netrc, no server
    spec = str(write_spec(tmp_path, ratios=[0.5]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tasbench.cli",
            "sweep",
            spec,
            "--out",
            str(tmp_path / "runs"),
            "--wandb",
            "online",
            *LATENCY,
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr
    (hash_,) = [r["hash"] for r in json.loads(result.stdout)["runs"]]
    assert (tmp_path / "runs" / "uniform" / hash_ / "metrics.json").exists()
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("tas-bench: warning: ")]
    assert "in online mode (No API key configured." in warning and "wandb sync " in warning

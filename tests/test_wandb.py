"""W&B: what a sweep logged offline is read back from the JSON each W&B run writes, and compared with its runs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_helpers import LATENCY, write_spec

from tasbench.cli import main
from tasbench.report.compare import logged_runs
from tasbench.report.wandb_log import LOGGED

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_offline_round_trip_and_compare(capsys, tmp_path):
    spec, root = str(write_spec(tmp_path)), tmp_path / "runs"
    threads = ["--threads", "1"]
    assert main(["sweep", spec, "--out", str(root), "--wandb", "offline", *LATENCY, *threads]) == 0
    local = {r["hash"]: r for r in json.loads(capsys.readouterr()[0])["runs"]}
    logged = logged_runs(root / "wandb")  # written by the sweep itself, complete when finish() returned
    assert len(logged) == 2 and all(run["complete"] and run["mode"] == "offline" for run in logged)
    assert {Path(p).parent.name.startswith("offline-run-") for p in (root / "wandb").rglob(LOGGED)} == {True}
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


def test_a_damaged_or_foreign_logged_file_is_named_in_one_line(capsys, tmp_path):
    runs = tmp_path / "runs"
    (runs / "wandb" / "offline-run-x").mkdir(parents=True)
    path = runs / "wandb" / "offline-run-x" / LOGGED
    for content, message in (
        (b'{"config": {', "truncated"),
        (b"[1, 2]", "holds a JSON array, expected an object"),
        (b'{"config": {}, "summary": {}, "history": [], "group": "g"}', "complete"),
    ):
        path.write_bytes(content)
        code = main(["compare", "--runs", str(runs), "--wandb-dir", str(runs / "wandb")])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1 and str(path) in err and message in err, err
    code = main(["compare", "--runs", str(runs), "--wandb-dir", str(tmp_path / "none")])
    assert code == 2 and "W&B directory" in capsys.readouterr()[1]


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

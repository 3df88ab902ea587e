"""`tas-bench bench gpu` in its CPU mode (what CI can run; on a GPU machine `nox -s gpu_check` runs it at batch 256),
and `sweep --dry-run --throughput FILE`, which turns its file into the GPU-hours of each phase of a spec."""

import json
import os
import re

import pytest
from runner_helpers import write_spec

from tasbench.runner.cost import teacher_macs
from tasbench.runner.spec import load_sweep

from helpers import assert_one_line_error, run_cli


@pytest.mark.slow
def test_the_gpu_check_in_cpu_mode_writes_a_throughput_file(tmp_path, capsys, one_thread):
    out = tmp_path / "throughput.json"
    argv = ["bench", "gpu", "--device", "cpu", "--batch-size", "8", "--steps", "1", "--warmup", "0"]
    argv += ["--networks", "resnet20", "--threads", "1", "--proxy-epochs", "1", "--proxy-top1", "5", "--out", str(out)]
    code, printed, err = run_cli(capsys, *argv)
    assert code == 0, err
    data = json.loads(out.read_text())
    assert data["format"] == "tas-bench-throughput/1" and data["device_type"] == "cpu" and data["batch_size"] == 8
    row = data["networks"]["resnet20"]
    assert row["macs"] == 40_813_194 and row["train_eager_images_per_s"] > 0 and row["search_eager_images_per_s"] > 0
    assert "train_compiled_images_per_s" not in row  # compiled only on CUDA
    assert row["peak_rss_mib"] > 0
    proxy = data["proxy_resnet20"]
    assert proxy["epochs"] == 1 and proxy["passed"] == (proxy["top1"] >= 5)
    assert printed["networks"] == data["networks"]


def throughput_file(path, device_type="cuda", train=10_000.0, search=4_000.0):
    row = {"macs": 40_813_194, "train_eager_images_per_s": train, "search_eager_images_per_s": search}
    path.write_text(
        json.dumps(
            {
                "format": "tas-bench-throughput/1",
                "device": "NVIDIA H100",
                "device_type": device_type,
                "torch": "2.x",
                "batch_size": 256,
                "networks": {"resnet20": row},
            }
        )
    )
    return path


def test_a_dry_run_with_a_throughput_file_gives_gpu_hours_per_phase(tmp_path, capsys):
    """ResNet-20 measured at 10,000 training images/s: the teacher phase is its epochs x (3 x train + test images)
    forward-pass equivalents at 3 passes per training image, i.e. exactly teacher_macs x 1/(10,000 x 3 x MACs)."""
    spec = write_spec(tmp_path, teacher={"epochs": 300, "batch_size": 32}, ratios=[0.5])
    (cfg,) = load_sweep(spec).runs
    path = throughput_file(tmp_path / "t.json")
    code, _, err = run_cli(capsys, "sweep", str(spec), "--dry-run", "--throughput", str(path), "--out", str(tmp_path))
    assert code == 0, err
    assert "measured on NVIDIA H100" in err and "GPU-hours" in err
    seconds = teacher_macs(cfg) / (10_000 * 3 * 40_813_194)  # 300 x (3 x 64 + 32) / 30,000 = 2.24 s
    (line,) = [line for line in err.splitlines() if line.startswith("teacher ")]
    assert re.search(rf"0m{round(seconds):02d}s\s+{seconds / 3600:.1f}$", line), line


def test_a_search_is_costed_by_the_measured_search_step(tmp_path, capsys):
    spec = write_spec(tmp_path, methods=[{"method": "tas", "options": {"epochs": 100, "batch_size": 32}}], ratios=[0.5])
    lines = {}
    for search in (4_000.0, 1_000.0):  # 4x slower search steps: 4x the prune phase, the rest unchanged
        path = throughput_file(tmp_path / f"t{search}.json", search=search)
        code, _, err = run_cli(
            capsys, "sweep", str(spec), "--dry-run", "--throughput", str(path), "--out", str(tmp_path)
        )
        assert code == 0, err
        lines[search] = {line.split()[0]: line for line in err.splitlines() if line[:8].strip() in ("prune", "teacher")}
    hours = {s: float(lines[s]["prune"].split()[-1]) for s in lines}
    assert lines[4_000.0]["teacher"] == lines[1_000.0]["teacher"]
    assert hours[1_000.0] == pytest.approx(4 * hours[4_000.0], rel=0.1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "is not JSON"),
        ('{"format": "x"}', "is not a throughput file (format 'x', expected 'tas-bench-throughput/1')"),
        ('{"format": "tas-bench-throughput/1", "networks": {}}', "measures no networks"),
        (
            '{"format": "tas-bench-throughput/1", "networks": {"resnet20": {"macs": 1, "train_eager_images_per_s": '
            '-1, "search_eager_images_per_s": 1}}}',
            "networks.resnet20.train_eager_images_per_s is -1, expected a positive number",
        ),
    ],
)
def test_a_bad_throughput_file_is_one_line(tmp_path, capsys, content, message):
    spec = write_spec(tmp_path)
    (tmp_path / "t.json").write_text(content)
    argv = ["sweep", str(spec), "--dry-run", "--throughput", str(tmp_path / "t.json"), "--out", str(tmp_path)]
    assert_one_line_error(capsys, argv, message)


def test_throughput_needs_a_dry_run(tmp_path, capsys):
    argv = ["sweep", str(write_spec(tmp_path)), "--throughput", str(throughput_file(tmp_path / "t.json"))]
    assert_one_line_error(capsys, [*argv, "--out", str(tmp_path)], "--throughput estimates a plan; it needs --dry-run")


@pytest.mark.slow
def test_the_nox_gpu_check_session_runs_in_cpu_mode(tmp_path):
    """`nox -s gpu_check -- --cpu` as a maintainer without a GPU runs it (here in this venv: --no-venv)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    work = tmp_path / "repo"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns(".venv", ".git", "runs", ".nox", "__pycache__"))
    argv = [sys.executable, "-m", "nox", "--no-venv", "--no-install", "-s", "gpu_check", "--", "--cpu"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped" in result.stderr + result.stdout  # the cuda tests, on a machine without one
    data = json.loads((work / "results" / "gpu-throughput-cpu.json").read_text())
    assert set(data["networks"]) == {"resnet20", "resnet56", "resnet110"}
    assert "no CIFAR-10 under data/" in result.stderr

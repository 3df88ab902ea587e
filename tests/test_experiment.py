"""One run and a whole sweep: files written, shared teachers, skipping, and a SIGKILLed sweep that resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from runner_helpers import LATENCY, one_thread, without_timing, write_spec  # noqa: F401 (a fixture)

from tasbench.cli import main
from tasbench.executors import Executor, execute
from tasbench.plan import describe
from tasbench.sweep import load_sweep

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_sweep_writes_one_directory_per_run_and_shares_its_teacher(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    root = tmp_path / "runs"
    results = execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None)
    (teacher,) = [d for d in (root / "train").iterdir() if d.is_dir()]  # beside it: its lock file
    assert sorted(p.name for p in teacher.iterdir()) == ["checkpoint.pt", "log.csv", "metrics.json", "model.pt",
                                                         "params.json"]  # fmt: skip
    for cfg, metrics in zip(sweep.runs, results):
        out = cfg.directory(root)
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.csv", "metrics.json", "model.pt",
                                                         "params.json", "pruned.pt"]  # fmt: skip
        params = json.loads((out / "params.json").read_text())
        assert params["hash"] == out.name and params["label"] == "Uniform" and params["config"] == cfg.config()
        assert params["seed"] == cfg.seed and params["environment"]["torch"] == torch.__version__
        assert metrics["teacher_hash"] == teacher.name and metrics["unpruned_macs"] == 40_813_194
        assert abs(metrics["flop_ratio"] - cfg.ratio) <= 0.01 * cfg.ratio
        assert metrics["target_band"] == [cfg.ratio * 0.99, cfg.ratio * 1.01] and metrics["in_band"] is True
        assert metrics["flop_reduction_pct"] == 100 * (1 - metrics["flop_ratio"])
        assert metrics["acc_drop"] == metrics["unpruned_top1"] - metrics["top1"]
        assert set(metrics["timing"]) >= {"teacher_seconds", "prune_seconds", "retrain_seconds", "eval_seconds",
                                          "latency_ms_batch1", "latency_ms_batch8"}  # fmt: skip
        assert metrics["environment"]["torch"] == torch.__version__ and len(metrics["environment"]["git_commit"]) == 40
        assert len((out / "log.csv").read_text().splitlines()) == 1 + 2  # header + 2 retraining epochs
    # finished runs are skipped: nothing is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
    assert execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None) == results
    assert stamps == {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
    assert describe("tiny", sweep.runs, root).startswith("sweep 'tiny': 2 runs: 2 done, 0 partial (resume), 0 to do")


def test_the_sweep_command_and_its_dry_run(capsys, tmp_path):
    spec = str(write_spec(tmp_path))
    out = ["--out", str(tmp_path / "runs"), "--wandb", "disabled", *LATENCY]
    assert main(["sweep", spec, "--dry-run", *out]) == 0
    printed, plan = capsys.readouterr()
    assert json.loads(printed) == {"sweep": "tiny", "dry_run": True, "runs": 2}
    assert "2 runs: 0 done, 0 partial (resume), 2 to do; 1 teachers to train" in plan
    assert "teacher   1 nets" in plan and not (tmp_path / "runs").exists()
    assert main(["sweep", spec, "--set", "ratios=[0.5]", *out]) == 0
    result = json.loads(capsys.readouterr()[0])
    assert [r["ratio"] for r in result["runs"]] == [0.5]
    main(["sweep", spec, "--dry-run", *out])
    plan = capsys.readouterr()[1]
    assert "2 runs: 1 done, 0 partial (resume), 1 to do; 0 teachers to train, 1 to reuse" in plan
    assert "unknown" not in plan.splitlines()[3]  # the finished teacher times this machine: a duration, not "unknown"


def _spawned_workers(pid: int) -> list[int]:
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        children += map(int, open(f"/proc/{pid}/task/{task}/children").read().split())
    return [c for c in children if "spawn_main" in open(f"/proc/{c}/cmdline").read()]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_sweep_resumes_to_the_same_metrics(tmp_path, workers):
    """SIGKILL the sweep mid-run (workers=1: the sweep's process group; workers=2: one worker process), restart it,
    and compare every run's metrics.json with an uninterrupted sweep's, timing and environment aside."""
    spec = write_spec(tmp_path, recipes=[{"name": "kd", "epochs": 3, "batch_size": 32}])
    sweep = load_sweep(spec)
    reference = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    root = tmp_path / "b"
    argv = [sys.executable, "-m", "tasbench.cli", "sweep", str(spec), "--out", str(root), "--wandb", "disabled",
            *LATENCY, "--threads", str(torch.get_num_threads()), "--workers", str(workers)]  # threads: as here
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        while proc.poll() is None and not list((root / "uniform").glob("*/checkpoint.pt")):
            time.sleep(0.02)
        if workers == 1:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(_spawned_workers(proc.pid)[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = list(root.glob("uniform/*/metrics.json"))
    assert len(finished) < len(sweep.runs), "the sweep finished before it could be killed"
    if workers == 2:  # the sweep reports the dead worker in one line (Python's resource tracker may add a warning)
        lines = err.decode().splitlines()
        assert proc.returncode == 1 and any(line.startswith("tas-bench: a worker process died") for line in lines)
        assert "Traceback" not in err.decode()
    subprocess.run(argv, check=True, capture_output=True)
    for cfg, expected in zip(sweep.runs, reference):
        got = json.loads((cfg.directory(root) / "metrics.json").read_text())
        assert without_timing(got) == without_timing(expected)
        weights = [torch.load(cfg.directory(r) / "model.pt", weights_only=True)["state_dict"]
                   for r in (tmp_path / "a", root)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_local_worker_processes_give_the_same_runs(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: the thread count changes float summation order, hence the weights
    try:
        sequential = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    parallel = execute(sweep.runs, tmp_path / "b", Executor("local", workers=2, threads=1), latency_batches=(1, 8),
                       log=lambda line: None)
    assert [without_timing(m) for m in parallel] == [without_timing(m) for m in sequential]
    assert os.getpid() not in {m["timing"]["pid"] for m in parallel}  # ran in worker processes


def test_the_ray_executor_on_a_local_ray_instance(tmp_path):
    """Slow-ish (Ray starts its own services): one teacher and one run, on a one-CPU local instance."""
    ray = pytest.importorskip("ray")  # installed with the dev extra; CI has it
    sweep = load_sweep(write_spec(tmp_path, ratios=[0.5]))
    local = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    lines = []
    try:
        on_ray = execute(sweep.runs, tmp_path / "b", Executor("ray", workers=1, threads=1), latency_batches=(1, 8),
                         log=lines.append)  # fmt: skip
    finally:
        ray.shutdown()
    assert [without_timing(m) for m in on_ray] == [without_timing(m) for m in local]
    assert os.getpid() not in {m["timing"]["pid"] for m in on_ray}
    assert sum("done on Ray" in line for line in lines) == 2  # the teacher, then the run


def test_a_teacher_trained_by_tas_bench_train_is_reused_by_the_sweep(capsys, tmp_path):
    """The sweep's teacher directory is the one `tas-bench train` writes for the same net, data and recipe."""
    root = str(tmp_path / "runs")
    assert main(["train", "--network", "resnet20", "--dataset", "proxy", "--proxy-train", "64", "--proxy-test", "32",
                 "--epochs", "1", "--batch-size", "32", "--out", root, "--no-progress"]) == 0  # fmt: skip
    trained = json.loads(capsys.readouterr()[0])["run_dir"]
    (cfg, *_) = load_sweep(write_spec(tmp_path)).runs
    assert str(cfg.teacher_directory(root)) == trained
    main(["sweep", str(write_spec(tmp_path)), "--dry-run", "--out", root])
    assert "0 teachers to train, 1 to reuse" in capsys.readouterr()[1]

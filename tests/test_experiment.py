"""One run and a whole sweep: files written, shared teachers, skipping, and a SIGKILLed sweep that resumes exactly."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from runner_helpers import LATENCY, spawned_workers, without_timing, write_spec

from baselines.l1_norm import L1Options
from baselines.uniform import UniformOptions
from tasbench.arch import Arch
from tasbench.cli import main
from tasbench.data import DataConfig
from tasbench.distill import DistillConfig
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.presets import preset
from tasbench.runner.executors import Executor, execute
from tasbench.runner.experiment import RunConfig, RunNotFinished, read_metrics
from tasbench.runner.plan import describe
from tasbench.runner.run_files import recorded_arch
from tasbench.runner.spec import load_sweep
from tasbench.runner.store import config_hash, file_digest
from tasbench.runner.teacher import TrainingRun
from tasbench.train import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_sweep_writes_one_directory_per_run_and_shares_its_teacher(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    root = tmp_path / "runs"
    results = execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None)
    (teacher,) = [d for d in (root / "train").iterdir() if d.is_dir()]  # beside it: its lock file
    assert sorted(p.name for p in teacher.iterdir()) == [
        "checkpoint.pt",
        "log.csv",
        "metrics.json",
        "model.pt",
        "params.json",
    ]
    for cfg, metrics in zip(sweep.runs, results):
        out = cfg.directory(root)
        assert sorted(p.name for p in out.iterdir()) == [
            "checkpoint.pt",
            "log.csv",
            "metrics.json",
            "model.pt",
            "params.json",
            "pruned.pt",
        ]
        params = json.loads((out / "params.json").read_text())
        assert params["hash"] == out.name and params["label"] == "Uniform" and params["config"] == cfg.config()
        assert params["seed"] == cfg.seed and params["environment"]["torch"] == torch.__version__
        assert metrics["teacher_hash"] == teacher.name and metrics["unpruned_macs"] == 40_813_194
        assert abs(metrics["flop_ratio"] - cfg.ratio) <= 0.01 * cfg.ratio
        assert metrics["target_band"] == [cfg.ratio * 0.99, cfg.ratio * 1.01] and metrics["in_band"] is True
        assert metrics["flop_reduction_pct"] == 100 * (1 - metrics["flop_ratio"])
        assert metrics["acc_drop"] == metrics["unpruned_top1"] - metrics["top1"]
        assert set(metrics["timing"]) >= {
            "teacher_seconds",
            "prune_seconds",
            "retrain_seconds",
            "eval_seconds",
            "latency_ms_batch1",
            "latency_ms_batch8",
        }
        assert metrics["environment"]["torch"] == torch.__version__ and len(metrics["environment"]["git_commit"]) == 40
        assert len((out / "log.csv").read_text().splitlines()) == 1 + 2  # header + 2 retraining epochs
        # the pruned shape is recorded (not hashed): it rebuilds a net of the recorded MACs, narrower than the teacher
        assert recorded_arch(out / "metrics.json", metrics) == Arch.from_dict(metrics["arch"]) != cfg.arch()
        assert macs(Arch.from_dict(metrics["arch"])) == metrics["macs"] < metrics["unpruned_macs"]
        assert read_metrics(cfg, root) == metrics
    # finished runs are skipped: nothing is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
    assert execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None) == results
    assert stamps == {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
    assert describe("tiny", sweep.runs, root).startswith("sweep 'tiny': 2 runs: 2 done, 0 partial (resume), 0 to do")


def test_reading_an_unfinished_run_names_it_and_computes_nothing(tmp_path):
    cfg = RunConfig(DataConfig("proxy"), "resnet20", "uniform", UniformOptions(), ratio=0.5, seed=0, label="Uniform")
    with pytest.raises(RunNotFinished) as e:
        read_metrics(cfg, tmp_path / "runs")
    assert str(e.value) == (
        f"run Uniform resnet20 ratio=0.5 seed=0 is not finished: "
        f"{str(cfg.directory(tmp_path / 'runs'))!r} has no metrics.json"
    )
    assert not (tmp_path / "runs").exists()  # no teacher trained, no directory made


def test_run_directories_keep_their_names():
    """The hashes of existing run directories (computed before `tas-bench train` and the sweep's teacher shared
    runner/teacher.py): a change here orphans every stored run."""
    cfg = RunConfig(DataConfig("proxy"), "resnet20", "uniform", UniformOptions(), ratio=0.5, seed=0)
    assert (cfg.teacher_directory("r").name, cfg.directory("r").name) == ("75432f0aaa2a", "2e9ec39ba894")
    cfg = RunConfig(
        DataConfig("cifar10"), "resnet56", "l1", L1Options(), ratio=0.6, seed=3, teacher=TrainConfig(epochs=7, seed=3)
    )
    assert (cfg.teacher_directory("r").name, cfg.directory("r").name) == ("be58ec1c206e", "746a1c16218f")
    # `tas-bench train --network resnet20 --dataset proxy --proxy-train 64 --proxy-test 32 --epochs 1
    # --batch-size 32`, as that command named it before
    data = DataConfig("proxy", proxy_train=64, proxy_test=32)
    arch = preset("resnet20", 10, "cifar")
    assert TrainingRun(arch, data, TrainConfig(epochs=1, batch_size=32)).directory("r").name == "19488fe86f11"
    # a distilled student from a weights file: the config `tas-bench train --weights W --teacher T` has hashed
    train, distill = TrainConfig(epochs=1), DistillConfig(0.9, 4.0)
    run = TrainingRun(arch, data, train, init_weights="a" * 64, teacher="b" * 64, distill=distill)
    assert run.config() == {
        "arch": arch.to_dict(),
        "data": dataclasses.asdict(data),
        "train": dataclasses.asdict(train),
        "init_weights": "a" * 64,
        "teacher": "b" * 64,
        "distill": {"alpha": 0.9, "temperature": 4.0},
    }
    assert config_hash(run.config()) == "50e42f0ac952"
    with pytest.raises(ConfigError, match="distils .* exactly when it names a teacher"):
        TrainingRun(arch, data, train, teacher="b" * 64)


@pytest.mark.slow
def test_the_sweep_command_and_its_dry_run(capsys, tmp_path):
    spec = str(write_spec(tmp_path))
    out = ["--out", str(tmp_path / "runs"), "--wandb", "disabled", *LATENCY, "--threads", "1"]
    assert main(["sweep", spec, "--dry-run", "--workers", "2", *out]) == 0  # calibrated as 2 workers at once
    printed, plan = capsys.readouterr()
    assert json.loads(printed) == {"sweep": "tiny", "dry_run": True, "runs": 2}
    lines = plan.splitlines()
    assert lines[0] == "sweep 'tiny': 2 runs: 0 done, 0 partial (resume), 2 to do; 1 teachers to train, 0 to reuse"
    assert re.fullmatch(r"speed: \S+ s/MAC \(calibrated in [0-9.]+ s, 2 at once, 1 thread each, on cpu\)", lines[1])
    assert lines[3].startswith("teacher   1 nets             0.009   0m")  # 1 x 40.8M x (3 x 64 + 32) MACs
    assert re.fullmatch(r"wall time: 0m\d\ds on 2 workers \(estimated\)", lines[8]) and not (tmp_path / "runs").exists()
    assert lines[10].startswith("todo ") and lines[10].endswith(
        " Uniform resnet20 ratio=0.5 recipe=kd seed=0 | "
        "teacher 1 ep (batch 32) | prune: one-shot | "
        "retrain: kd 2 ep (batch 32)"
    )
    assert main(["sweep", spec, "--set", "ratios=[0.5]", *out]) == 0
    result = json.loads(capsys.readouterr()[0])
    assert [r["ratio"] for r in result["runs"]] == [0.5]
    main(["sweep", spec, "--dry-run", *out])
    plan = capsys.readouterr()[1]
    assert "2 runs: 1 done, 0 partial (resume), 1 to do; 0 teachers to train, 1 to reuse" in plan
    assert "speed: " in plan and "(calibrated in " in plan and ", 1 at once, 1 thread each, on cpu" in plan
    # The finished teacher (trained with 1 thread, as this sweep would) corrects the calibrated speed.
    assert re.search(r"speed: .* x[0-9.]+ to match the teacher that finished in .*/train/[0-9a-f]{12}\)", plan)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_sweep_resumes_to_the_same_metrics(tmp_path, workers):
    """SIGKILL the sweep mid-run (workers=1: the sweep's process group; workers=2: one worker process), restart it,
    and compare every run's metrics.json with an uninterrupted sweep's, timing and environment aside."""
    spec = write_spec(tmp_path, recipes=[{"name": "kd", "epochs": 3, "batch_size": 32}])
    sweep = load_sweep(spec)
    reference = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    root = tmp_path / "b"
    argv = [
        sys.executable,
        "-m",
        "tasbench.cli",
        "sweep",
        str(spec),
        "--out",
        str(root),
        "--wandb",
        "disabled",
        *LATENCY,
        "--threads",
        str(torch.get_num_threads()),
        "--workers",
        str(workers),
    ]  # threads: as here
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        while proc.poll() is None and not list((root / "uniform").glob("*/checkpoint.pt")):
            time.sleep(0.02)
        if workers == 1:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(spawned_workers(proc.pid)[0], signal.SIGKILL)
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
        weights = [
            torch.load(cfg.directory(r) / "model.pt", weights_only=True)["state_dict"] for r in (tmp_path / "a", root)
        ]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.slow
def test_local_worker_processes_give_the_same_runs(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: the thread count changes float summation order, hence the weights
    try:
        sequential = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    parallel = execute(
        sweep.runs,
        tmp_path / "b",
        Executor("local", workers=2, threads=1),
        latency_batches=(1, 8),
        log=lambda line: None,
    )
    assert [without_timing(m) for m in parallel] == [without_timing(m) for m in sequential]
    assert os.getpid() not in {m["timing"]["pid"] for m in parallel}  # ran in worker processes


@pytest.mark.slow
def test_the_ray_executor_on_a_local_ray_instance(tmp_path):
    """Slow-ish (Ray starts its own services): one teacher and one run, on a one-CPU local instance; then a run that
    fails on Ray is recorded and the sweep goes on."""
    from tasbench.runner.executors import RunsFailed

    ray = pytest.importorskip("ray")  # installed with the dev extra; CI has it
    sweep = load_sweep(write_spec(tmp_path, ratios=[0.5]))
    local = execute(sweep.runs, tmp_path / "a", latency_batches=(1, 8), log=lambda line: None)
    lines = []
    both = load_sweep(write_spec(tmp_path, ratios=[0.5, 0.3])).runs
    bad = both[1].directory(tmp_path / "b")
    bad.mkdir(parents=True)
    (bad / "pruned.pt").write_bytes(b"\x00" * 10)  # the 0.3 run cannot read its pruned net back
    try:
        on_ray = execute(
            sweep.runs, tmp_path / "b", Executor("ray", workers=1, threads=1), latency_batches=(1, 8), log=lines.append
        )
        with pytest.raises(RunsFailed) as failed:
            execute(
                both,
                tmp_path / "b",
                Executor("ray", workers=1, threads=1),
                latency_batches=(1, 8),
                log=lines.append,
                fail_fast=False,
            )
    finally:
        ray.shutdown()
    assert [without_timing(m) for m in on_ray] == [without_timing(m) for m in local]
    assert os.getpid() not in {m["timing"]["pid"] for m in on_ray}
    assert sum("done on Ray" in line for line in lines) == 2  # the teacher, then the run
    assert failed.value.results[0] == on_ray[0] and failed.value.results[1] is None
    assert any(line.startswith("[1/1] run FAILED on Ray (ConfigError: checkpoint") for line in lines)
    assert json.loads((bad / "error.json").read_text())["stage"] == "run"


def test_a_teacher_trained_by_tas_bench_train_is_reused_by_the_sweep(capsys, tmp_path):
    """The sweep's teacher directory is the one `tas-bench train` writes for the same net, data and recipe."""
    root = str(tmp_path / "runs")
    assert (
        main(
            [
                "train",
                "--network",
                "resnet20",
                "--dataset",
                "proxy",
                "--proxy-train",
                "64",
                "--proxy-test",
                "32",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--out",
                root,
                "--no-progress",
            ]
        )
        == 0
    )
    trained = json.loads(capsys.readouterr()[0])["run_dir"]
    (cfg, *_) = load_sweep(write_spec(tmp_path)).runs
    assert str(cfg.teacher_directory(root)) == trained
    main(["sweep", str(write_spec(tmp_path)), "--dry-run", "--out", root])
    assert "0 teachers to train, 1 to reuse" in capsys.readouterr()[1]


def test_every_run_records_the_code_it_ran(tmp_path):
    """metrics.json's `code`: the package version, the git commit, and the hash of the engine's sources plus the
    method's own package (the teacher: the engine's only), the same record in params.json from the run's start."""
    from importlib.metadata import version

    from tasbench.runner.code_identity import code_identity, code_packages, source_hash

    sweep = load_sweep(write_spec(tmp_path, ratios=[0.5], methods=[{"method": "l1"}]))
    root = tmp_path / "runs"
    (metrics,) = execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None)
    cfg = sweep.runs[0]
    assert code_packages("l1") == ("baselines", "tasbench") and code_packages(None) == ("tasbench",)
    assert set(metrics["code"]) == {"version", "git_commit", "git_dirty", "source_hash"}
    assert (
        metrics["code"]
        == code_identity(("baselines", "tasbench"))
        == json.loads((cfg.directory(root) / "params.json").read_text())["code"]
    )
    assert metrics["code"]["version"] == version("tas-bench") and len(metrics["code"]["git_commit"]) == 40
    teacher = json.loads((cfg.teacher_directory(root) / "metrics.json").read_text())
    assert teacher["code"]["source_hash"] == source_hash(("tasbench",)) != metrics["code"]["source_hash"]
    assert all(
        len(h) == 12 and int(h, 16) >= 0 for h in (teacher["code"]["source_hash"], metrics["code"]["source_hash"])
    )
    assert metrics["teacher_sha256"] == file_digest(cfg.teacher_directory(root) / "model.pt")


@pytest.fixture
def baselines_copy(tmp_path, monkeypatch):
    """The hashed sources of `baselines` are a temporary copy of the real package (real files, hashed as usual):
    editing the copy is a change of the L1/FPGM code as far as run records go."""
    from tasbench.runner import code_identity

    copy = tmp_path / "src" / "baselines"
    shutil.copytree(code_identity.package_directory("baselines"), copy, ignore=shutil.ignore_patterns("__pycache__"))
    real = code_identity.package_directory
    monkeypatch.setattr(code_identity, "package_directory", lambda name: copy if name == "baselines" else real(name))
    code_identity.source_hash.cache_clear()
    yield copy
    code_identity.source_hash.cache_clear()


def test_a_changed_method_makes_its_runs_stale_and_rerun_stale_recomputes_only_them(capsys, tmp_path, baselines_copy):
    from tasbench.runner.code_identity import source_hash
    from tasbench.runner.run_state import run_state
    from tasbench.runner.supersede import superseded

    # `released` (package tas) beside `l1` (package baselines): a change to baselines leaves the released run alone.
    methods = [{"method": "released", "ratios": [0.55]}, {"method": "l1", "label": "L1"}]
    spec = write_spec(tmp_path, ratios=[0.5], methods=methods)
    runs = load_sweep(spec).runs
    root = tmp_path / "runs"
    first = execute(runs, root, latency_batches=(1, 8), log=lambda line: None)
    released, l1 = (cfg.directory(root) for cfg in runs)
    kept = [p for d in (released, runs[0].teacher_directory(root)) for p in d.rglob("*")]
    stamps = {p: p.stat().st_mtime_ns for p in kept}

    source = baselines_copy / "l1_norm.py"
    source.write_text(source.read_text() + "\n# a comment: any byte of the method's sources counts\n")
    source_hash.cache_clear()
    assert [run_state(cfg, root).stale for cfg in runs] == [
        "",
        f"computed by other code (sources {first[1]['code']['source_hash']}, now "
        f"{source_hash(('baselines', 'tasbench'))})",
    ]
    plan = describe("tiny", runs, root).splitlines()
    assert plan[1] == (
        "stale: 1 runs computed by other code or from another teacher; reused as they are "
        "(--rerun-stale recomputes them)"
    )
    assert [line.split()[:2] for line in plan if str(root) in line] == [["done", str(released)], ["done,", "stale"]]

    # Without a flag the stale run is reused as it is (and still reported stale); nothing is recomputed.
    assert execute(runs, root, latency_batches=(1, 8), log=lambda line: None) == first
    assert run_state(runs[1], root).stale and not list(l1.glob("superseded-*"))

    assert main(["sweep", str(spec), "--rerun-stale", "--out", str(root), "--wandb", "disabled", *LATENCY]) == 0
    assert "1 runs already done, 1 to run, 0 teachers to train" in capsys.readouterr()[1]
    again = [json.loads((d / "metrics.json").read_text()) for d in (released, l1)]
    (old,) = superseded(l1)  # the old result, moved aside whole
    assert json.loads((old / "metrics.json").read_text()) == first[1]
    assert sorted(p.name for p in old.iterdir()) == [
        "checkpoint.pt",
        "log.csv",
        "metrics.json",
        "model.pt",
        "params.json",
        "pruned.pt",
    ]
    assert again[1]["code"]["source_hash"] == source_hash(("baselines", "tasbench")) != first[1]["code"]["source_hash"]
    assert {k: v for k, v in without_timing(again[1]).items() if k != "code"} == {
        k: v for k, v in without_timing(first[1]).items() if k != "code"
    }  # a comment changes no number
    assert again[0] == first[0] and stamps == {p: p.stat().st_mtime_ns for p in kept}  # released run, teacher untouched
    assert [run_state(cfg, root).stale for cfg in runs] == ["", ""]


@pytest.mark.slow
def test_force_recomputes_every_run_and_its_teacher(capsys, tmp_path):
    from tasbench.runner.supersede import superseded

    spec = str(write_spec(tmp_path, ratios=[0.5]))
    root = tmp_path / "runs"
    argv = ["sweep", spec, "--out", str(root), "--wandb", "disabled", *LATENCY, "--no-progress"]
    assert main(argv) == 0
    before = json.loads(capsys.readouterr()[0])
    (cfg,) = load_sweep(spec).runs
    assert main([*argv, "--force", "--dry-run"]) == 0
    plan = capsys.readouterr()[1]
    assert "1 runs: 1 done, 0 partial (resume), 0 to do; 1 teachers to train, 0 to reuse" in plan
    assert "stale: 0 runs computed by other code or from another teacher; to recompute, with every other run" in plan
    assert main([*argv, "--rerun-stale", "--dry-run"]) == 0  # nothing stale: nothing to do
    plan = capsys.readouterr()[1]
    assert "1 runs: 1 done, 0 partial (resume), 0 to do; 0 teachers to train, 0 to reuse" in plan
    assert "stale: 0 runs computed by other code or from another teacher; to recompute (--rerun-stale)" in plan
    assert main([*argv, "--force"]) == 0
    after = json.loads(capsys.readouterr()[0])
    assert after == before  # recomputed, on CPU bit for bit
    for directory in (cfg.directory(root), cfg.teacher_directory(root)):
        (old,) = superseded(directory)
        assert (old / "metrics.json").exists() and (directory / "metrics.json").exists()
        assert (old / "metrics.json").stat().st_mtime < (directory / "metrics.json").stat().st_mtime


@pytest.mark.slow
def test_a_failed_teacher_fails_only_its_runs_and_the_sweep_goes_on(capsys, tmp_path):
    methods = [
        {"method": "uniform", "label": "Uniform"},
        {"method": "l1", "label": "L1 (A)", "options": {"variant": "A"}},
    ]
    spec = str(write_spec(tmp_path, ratios=[0.5], seeds=[0, 1], methods=methods))
    runs = load_sweep(spec).runs  # Uniform seed 0 and 1, L1 (A) seed 0 and 1
    root = tmp_path / "runs"
    argv = ["sweep", spec, "--out", str(root), "--wandb", "disabled", *LATENCY, "--no-progress"]
    # --fail-fast: the invalid runs (Li et al.'s variant A exists for ResNet-56/110 only) stop it before any training
    assert main([*argv, "--fail-fast"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "tas-bench: error: L1 (A) resnet20 ratio=0.5: L1 variant 'A' is defined for the "
        "full resnet56 and resnet110 only (Li et al., Table 2), not for this 20-layer "
        "network; give --ratio for a FLOP-matched L1 net (and 1 more invalid runs)\n"
    )
    assert not root.exists()

    broken = runs[0].teacher_directory(root)  # seed 0's teacher cannot resume from a checkpoint that is no checkpoint
    broken.mkdir(parents=True)
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(argv) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert [(r["label"], r["seed"]) for r in result["runs"]] == [("Uniform", 1)] and result["passed"] is False
    reason = f"checkpoint '{broken}/checkpoint.pt' is truncated or not a PyTorch file (not a torch.save archive)"
    variant_a = "invalid (L1 variant 'A' is defined for the full resnet56 and resnet110 only"
    assert result["failed"][0] == (
        f"Uniform resnet20 ratio=0.5 recipe=kd seed=0 ({runs[0].directory(root)}): its "
        f"teacher failed (ConfigError: {reason})"
    )
    assert [line.split(": ", 1)[1].startswith(variant_a) for line in result["failed"][1:]] == [True, True]
    error = json.loads((broken / "error.json").read_text())
    assert (error["error"], error["message"], error["stage"]) == ("ConfigError", reason, "teacher")
    assert "in load_checkpoint" in error["traceback"] and error["pid"] == os.getpid()
    assert not runs[0].directory(root).exists()  # never started: it needs that teacher
    summary, *lines = err[err.index("tas-bench: 3 of 4") :].splitlines()
    assert summary.startswith("tas-bench: 3 of 4 runs failed; the others finished") and len(lines) == 3
    assert "Traceback" not in err and "sweep 0/" not in err and "img/s" not in err  # --no-progress: no bars
    assert main([*argv, "--dry-run"]) == 1  # invalid runs: a dry run that finds them says so by its exit status
    plan = capsys.readouterr()[1]
    assert f"failed teacher (tried again): {broken}: ConfigError: {reason}" in plan
    assert plan.count("invalid  ") == 2 and plan.count("   invalid: L1 variant 'A' is defined") == 2

    (broken / "checkpoint.pt").unlink()  # repaired: the same command trains the teacher and its run
    assert main(argv) == 1  # L1 (A) is still invalid
    result = json.loads(capsys.readouterr()[0])
    assert [(r["label"], r["seed"]) for r in result["runs"]] == [("Uniform", 0), ("Uniform", 1)]
    assert not (broken / "error.json").exists() and len(result["failed"]) == 2


@pytest.mark.slow
def test_a_failed_run_in_a_worker_process_is_recorded_and_the_others_finish(tmp_path):
    from tasbench.runner.executors import RunsFailed
    from tasbench.runner.failures import read_failure

    sweep = load_sweep(write_spec(tmp_path))  # ratios 0.5 and 0.3, one teacher
    root = tmp_path / "runs"
    bad = sweep.runs[0].directory(root)
    bad.mkdir(parents=True)
    (bad / "pruned.pt").write_bytes(b"\x00" * 10)  # a pruned net that cannot be read back: the run fails, for real
    workers = Executor("local", workers=2, threads=1)
    with pytest.raises(ConfigError, match="pruned.pt' is truncated"):  # fail_fast (the library default) raises
        execute(sweep.runs, root, workers, latency_batches=(1, 8), log=lambda line: None)
    lines = []
    with pytest.raises(RunsFailed) as failed:
        execute(sweep.runs, root, workers, latency_batches=(1, 8), log=lines.append, fail_fast=False)
    assert failed.value.results[0] is None and failed.value.results[1]["ratio"] == 0.3
    assert failed.value.failures == [
        f"Uniform resnet20 ratio=0.5 recipe=kd seed=0 ({bad}): ConfigError: checkpoint "
        f"'{bad}/pruned.pt' is truncated or not a PyTorch file (not a torch.save "
        f"archive)"
    ]
    assert any(line.startswith("[1/2] run FAILED (ConfigError: checkpoint") for line in lines)
    assert read_failure(bad)["pid"] != os.getpid()  # recorded by the worker that ran it
    (bad / "pruned.pt").unlink()
    results = execute(sweep.runs, root, workers, latency_batches=(1, 8), log=lambda line: None, fail_fast=False)
    assert [m["ratio"] for m in results] == [0.5, 0.3] and not (bad / "error.json").exists()


def test_the_overall_bar_sits_above_each_runs_own_bars(capsys, tmp_path):
    """One bar for the sweep (runs done of the total, the job running, elapsed<ETA), and under it in a sequential
    sweep the teacher's and the run's own training bars."""
    sweep = load_sweep(write_spec(tmp_path, ratios=[0.5]))
    execute(
        sweep.runs,
        tmp_path / "runs",
        latency_batches=(1, 8),
        progress=True,
        log=lambda line: print(line, file=sys.stderr),
    )
    err = capsys.readouterr().err
    frames = [frame.strip() for frame in err.replace("\r", "\n").splitlines() if frame.startswith("sweep ")]
    assert frames[0].startswith("sweep 0/1 runs   0%|") and frames[-1].startswith("sweep 1/1 runs 100%|")
    assert any(f.endswith("| teacher: resnet20 seed=0 [" + f.rsplit("[", 1)[1]) for f in frames)
    assert any("| run: Uniform resnet20 ratio=0.5 recipe=kd seed=0 [" in f for f in frames)
    assert "train: 100%" in err  # the teacher's and the run's training bars
    assert err.index("[1/1] teacher done") < err.index("[1/1] run done")  # log lines print above the bars

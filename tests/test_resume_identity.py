"""A resumed run computes what an uninterrupted one does, whatever the resuming process was started with.

The torch thread count changes a CPU run's float sums, and it is not hashed: a run records it in params.json when it
starts, and every resume computes with the recorded count (tasbench/runner/store.py). Here a real sweep is SIGKILLed
mid-teacher and mid-retraining under `--threads 1` and resumed under `--workers 2 --threads 2`; `tas-bench train`
and a TAS search are interrupted in-process and resumed under another thread count. Each ends bit for bit where an
uninterrupted run under the first setting ends.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from runner_helpers import LATENCY, assert_same_results, assert_same_runs

from tasbench.cli import main
from tasbench.runner.experiment import run_one
from tasbench.runner.spec import load_sweep

SPEC = {
    "name": "threads",
    "data": {"dataset": "proxy", "proxy_train": 128, "proxy_test": 32},
    "networks": ["resnet20"],
    "teacher": {"epochs": 3, "batch_size": 32},
    "methods": [{"method": "uniform", "label": "Uniform"}],
    "ratios": [0.5],
    "seeds": [0],
    "recipes": [{"name": "kd", "epochs": 2, "batch_size": 32}],
}
STARTED = ["--threads", "1"]  # the setting every run here starts under: one thread, fast on shared cores
RESUMED = ["--workers", "2", "--threads", "2"]  # another count, as another --workers on another machine implies


def signal_when(argv: list[str], ready, signum: int = signal.SIGKILL, env: dict | None = None) -> tuple[int, str]:
    """Start the command in its own process group and send `signum` to the group (as Ctrl-C in a terminal sends
    SIGINT to every process of the job) the moment `ready()` is true; its exit status and stderr."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env
    )
    try:
        while proc.poll() is None and not ready():
            time.sleep(0.001)
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not finished, f"the command ended before it was signalled: {err[-2000:]}"
    return proc.returncode, err


def assert_interrupted_in_one_line(code: int, err: str, signum: int, line: str) -> None:
    """Exit status 128 + signum and, after whatever progress came before, the one line `line`: no traceback, no
    KeyboardInterrupt from a worker, no resource tracker warning."""
    assert code == 128 + signum, err[-3000:]
    for noise in ("Traceback", "KeyboardInterrupt", "leaked semaphore", "resource_tracker"):
        assert noise not in err, err[-3000:]
    assert err.rstrip("\n").splitlines()[-1] == line and err.count("tas-bench:") == 1, err[-3000:]


@pytest.mark.slow
def test_a_sweep_killed_and_resumed_under_other_workers_ends_as_an_uninterrupted_one(tmp_path):
    """Killed mid-teacher (root b) and mid-retraining (root c) under --threads 1, resumed under --workers 2
    --threads 2: the teacher (b, c) and the run (c) end bit for bit as in an uninterrupted --threads 1 sweep, with
    the count they began with (1) in params.json and metrics.json. Without the recorded count both differ."""
    spec = tmp_path / "threads.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    (cfg,) = load_sweep(spec).runs
    command = [
        sys.executable,
        "-m",
        "tasbench.cli",
        "sweep",
        str(spec),
        "--wandb",
        "disabled",
        *LATENCY,
        "--no-progress",
    ]
    sweep = lambda root, setting: [*command, "--out", str(root), *setting]  # noqa: E731
    subprocess.run(sweep(tmp_path / "a", STARTED), check=True, capture_output=True)
    teacher = cfg.teacher_directory(tmp_path / "a")
    for root, killed_in in ((tmp_path / "b", cfg.teacher_directory), (tmp_path / "c", cfg.directory)):
        assert signal_when(sweep(root, STARTED), (killed_in(root) / "checkpoint.pt").exists)[0] == -signal.SIGKILL
        assert not (killed_in(root) / "metrics.json").exists()  # killed mid-training, with epochs left
        subprocess.run(sweep(root, RESUMED), check=True, capture_output=True)
        assert_same_results(teacher, cfg.teacher_directory(root))
        assert json.loads((cfg.teacher_directory(root) / "metrics.json").read_text())["environment"]["threads"] == 1
        # In b the run itself began after the resume, so it records (and computes with) the resumed setting's count.
        began_with = 1 if root.name == "c" else 2
        assert json.loads((cfg.directory(root) / "params.json").read_text())["threads"] == began_with
        assert json.loads((cfg.directory(root) / "metrics.json").read_text())["timing"]["threads"] == began_with
    assert_same_runs([cfg], tmp_path / "a", tmp_path / "c")


@pytest.fixture
def threads():
    """Set this process's torch thread count inside a test; the count it had is restored after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def die_after_first_checkpoint(monkeypatch, module) -> None:
    """`module.save_torch` writes the checkpoint, then the process 'dies' (KeyboardInterrupt) right after it."""
    save = module.save_torch

    def save_then_die(path, obj):
        save(path, obj)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "save_torch", save_then_die)


@pytest.mark.slow
def test_tas_bench_train_resumes_with_the_thread_count_it_started_with(tmp_path, monkeypatch, threads, capsys):
    """`tas-bench train` stopped after its first epoch under 1 thread, resumed under 2: it ends with the weights
    and metrics of an uninterrupted 1-thread run, its params.json (which it used to rewrite) still says 1, and the
    process gets its own count back."""
    import tasbench.train

    argv = [
        "train",
        "--dataset",
        "proxy",
        "--proxy-train",
        "128",
        "--proxy-test",
        "32",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--no-progress",
        "--device",
        "cpu",
    ]
    threads(1)
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    die_after_first_checkpoint(monkeypatch, tasbench.train)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 130  # an interrupt: one line, exit status 130
    monkeypatch.undo()
    threads(2)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert torch.get_num_threads() == 2
    (a,), (b,) = ([d for d in (tmp_path / r / "train").iterdir() if d.is_dir()] for r in "ab")
    assert_same_results(a, b)
    assert json.loads((b / "params.json").read_text())["threads"] == 1
    capsys.readouterr()


@pytest.mark.slow
def test_a_tas_search_resumes_with_its_runs_thread_count(tmp_path, monkeypatch, threads):
    """A TAS run whose search stopped after its first epoch under 1 thread, resumed under 2 (its teacher, trained
    and kept before, is read): the search, the retraining and the final metrics equal an uninterrupted 1-thread
    run's."""
    import tas.search

    spec = tmp_path / "tas.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                **SPEC,
                "teacher": {"epochs": 1, "batch_size": 32},
                "methods": [{"method": "tas", "options": {"epochs": 2, "batch_size": 32}}],
                "recipes": [{"name": "kd", "epochs": 1, "batch_size": 32}],
            }
        )
    )
    (cfg,) = load_sweep(spec).runs
    cpu = torch.device("cpu")
    threads(1)
    run_one(cfg, tmp_path / "a", device=cpu, latency_batches=(1,))
    die_after_first_checkpoint(monkeypatch, tas.search)
    with pytest.raises(KeyboardInterrupt):
        run_one(cfg, tmp_path / "b", device=cpu, latency_batches=(1,))
    monkeypatch.undo()
    assert not (cfg.directory(tmp_path / "b") / "pruned.pt").exists()  # stopped mid-search
    threads(2)
    metrics = run_one(cfg, tmp_path / "b", device=cpu, latency_batches=(1,))
    assert_same_runs([cfg], tmp_path / "a", tmp_path / "b")
    assert metrics["timing"]["threads"] == 1 and torch.get_num_threads() == 2


@pytest.mark.slow
def test_ctrl_c_stops_a_two_worker_sweep_in_one_line_and_the_same_command_resumes(tmp_path):
    """SIGINT to the process group of a `--workers 2` sweep, its workers retraining: one line, exit status 130, no
    worker traceback or leaked-semaphore warning; the same command then finishes as an uninterrupted sweep."""
    spec = tmp_path / "ctrl-c.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "ratios": [0.5, 0.3]}))
    runs = load_sweep(spec).runs
    argv = [
        sys.executable,
        "-m",
        "tasbench.cli",
        "sweep",
        str(spec),
        "--wandb",
        "disabled",
        *LATENCY,
        "--no-progress",
        "--threads",
        "1",
    ]
    subprocess.run([*argv, "--out", str(tmp_path / "a")], check=True, capture_output=True)
    root = tmp_path / "b"
    retraining = (runs[0].directory(root) / "checkpoint.pt").exists
    code, err = signal_when([*argv, "--out", str(root), "--workers", "2"], retraining, signal.SIGINT)
    done = len(list(root.glob("uniform/*/metrics.json")))
    assert_interrupted_in_one_line(
        code,
        err,
        signal.SIGINT,
        f"tas-bench: interrupted by SIGINT: {done} of 2 runs "
        "finished and kept; run the same command to resume the others",
    )
    assert done < 2
    subprocess.run([*argv, "--out", str(root), "--workers", "2"], check=True, capture_output=True)
    assert_same_runs(runs, tmp_path / "a", root)


@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_tas_bench_train_in_one_line_and_the_same_command_resumes(tmp_path):
    """`tas-bench train` (with its progress bar) stopped by SIGINT to its process group, then by SIGTERM, each
    after one more epoch: one line each (the bar closed before it), 130 and 143; the same command then ends with the
    weights of an uninterrupted run."""
    argv = [
        sys.executable,
        "-m",
        "tasbench.cli",
        "train",
        "--dataset",
        "proxy",
        "--proxy-train",
        "128",
        "--proxy-test",
        "32",
        "--epochs",
        "4",
        "--batch-size",
        "32",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*argv, "--out", str(tmp_path / "a")], check=True, capture_output=True, env=env)
    (a,) = [d for d in (tmp_path / "a" / "train").iterdir() if d.is_dir()]
    b = tmp_path / "b" / "train" / a.name
    line = (
        "tas-bench: interrupted by {}; the run keeps its last finished epoch (checkpoint.pt); run the same "
        "command to resume it"
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        before = logged_epochs(b)
        ready = lambda before=before: logged_epochs(b) > before  # noqa: E731 (one more epoch than before)
        code, err = signal_when([*argv, "--out", str(tmp_path / "b")], ready, signum, env)
        assert_interrupted_in_one_line(code, err, signum, line.format(signal.Signals(signum).name))
        assert logged_epochs(b) < 4
    assert not (b / "metrics.json").exists()
    subprocess.run([*argv, "--out", str(tmp_path / "b")], check=True, capture_output=True, env=env)
    assert_same_results(a, b)


def logged_epochs(run) -> int:
    """Epochs in `run`'s log.csv (replaced atomically after each checkpoint)."""
    try:
        return len((run / "log.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_an_offline_w_and_b_sweep_writes_nothing_outside_its_root(tmp_path):
    """HOME (and the XDG directories) empty and fresh: after a sweep logging to W&B offline, they are still empty,
    and W&B's debug logs (its service's too) lie under --out."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
    )
    spec = tmp_path / "w.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                **SPEC,
                "teacher": {"epochs": 1, "batch_size": 32},
                "recipes": [{"name": "kd", "epochs": 1, "batch_size": 32}],
            }
        )
    )
    root = tmp_path / "runs"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tasbench.cli",
            "sweep",
            str(spec),
            "--out",
            str(root),
            "--wandb",
            "offline",
            *LATENCY,
            "--threads",
            "1",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []
    assert list(root.glob("wandb/wandb/offline-run-*/*.wandb")) and list(root.glob("wandb/cache/**/core-debug-*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "runs", "w.yaml"]  # nothing in the cwd either

"""Run locks: two sweeps on one results root never run the same run at once, and a dead holder's lock is free."""

import dataclasses
import json
import re
import signal
import subprocess
import sys

import pytest
import torch
from runner_helpers import LATENCY, without_timing, write_spec

from tasbench.runner.executors import execute
from tasbench.runner.experiment import run_one
from tasbench.runner.locks import directory_lock
from tasbench.runner.spec import load_sweep

pytestmark = pytest.mark.usefixtures("one_thread")

HOLD = """
import sys, time
from pathlib import Path
from tasbench.runner.locks import directory_lock
with directory_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lock_held_by_a_killed_process_is_taken_over(tmp_path):
    sweep = load_sweep(write_spec(tmp_path))
    run = sweep.runs[0].directory(tmp_path / "runs")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with directory_lock(run, wait=False) as held:
            assert not held
        # A sweep process leaves a held run to its holder instead of running it too.
        assert run_one(sweep.runs[0], tmp_path / "runs", device=torch.device("cpu"), wait=False) is None
        assert not run.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with directory_lock(run, wait=False) as held:  # the kernel dropped the dead holder's lock
        assert held


def _ran(stderr: str) -> set[str]:
    """The run directories a sweep process says it ran itself ("run done: ... -> DIR")."""
    return set(re.findall(r"run done: .* -> (\S+)$", stderr, re.MULTILINE))


@pytest.mark.slow
def test_two_sweeps_on_one_root_run_each_run_once(tmp_path):
    spec = write_spec(tmp_path, ratios=[0.9, 0.7, 0.5, 0.3])
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
    ]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    ran = [_ran(err) for _, err in outputs]
    every = {str(cfg.directory(root)) for cfg in sweep.runs}
    assert ran[0] | ran[1] == every and not ran[0] & ran[1]  # each run ran exactly once, in one of the two
    for cfg, expected in zip(sweep.runs, reference):
        got = json.loads((cfg.directory(root) / "metrics.json").read_text())
        assert without_timing(got) == without_timing(expected)
        owner = [p.pid for p, r in zip(procs, ran) if str(cfg.directory(root)) in r]
        assert got["timing"]["pid"] == owner[0]  # computed by the process that says it ran it
    for _, err in outputs:  # both print the same final table of all runs
        assert "Traceback" not in err
    assert json.loads(outputs[0][0])["runs"] == json.loads(outputs[1][0])["runs"]
    assert not list(root.rglob(".*.tmp-*"))


@pytest.mark.slow
def test_a_run_held_by_another_process_is_not_moved_aside(tmp_path):
    """A recompute (`--force`, `--rerun-stale`) moves a run's old results aside under the run's lock: while another
    process holds the run, the job is "busy" and nothing in the run directory changes."""
    from tasbench.runner.executors import jobs, work
    from tasbench.runner.supersede import superseded

    sweep = load_sweep(write_spec(tmp_path, ratios=[0.5]))
    root = tmp_path / "runs"
    execute(sweep.runs, root, latency_batches=(1, 8), log=lambda line: None)
    run = sweep.runs[0].directory(root)
    stamps = {p: p.stat().st_mtime_ns for p in run.iterdir()}
    _, (job,) = jobs(sweep.runs, root, "cpu", None, 1, latency_batches=(1, 8), rerun="all")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert work(dataclasses.replace(job, wait=False)) == "busy"
        assert stamps == {p: p.stat().st_mtime_ns for p in run.iterdir()} and not superseded(run)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert work(job) == "ran" and len(superseded(run)) == 1  # free again: moved aside, computed afresh

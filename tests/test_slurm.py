"""`--executor slurm` through submitit, exercised with submitit's local executor (`--slurm-cluster local`): real
job processes, real pickling of the jobs, real result files; a sweep killed with its jobs (a node lost) resumes
from the files it left and ends with the numbers of an uninterrupted local sweep."""

import os
import signal
import subprocess
import sys
import time

import pytest
from runner_helpers import LATENCY, assert_same_results, assert_same_runs, write_spec

from tasbench.errors import ConfigError
from tasbench.runner.executors import Executor
from tasbench.runner.spec import load_sweep

pytest.importorskip("submitit")


def test_slurm_options_need_the_slurm_executor():
    with pytest.raises(ConfigError, match="--slurm-partition gpu .* needs --executor slurm"):
        Executor("local", slurm_partition="gpu")
    with pytest.raises(ConfigError, match="--gpus-per-run 0.5: a Slurm job takes whole GPUs"):
        Executor("slurm", gpus_per_run=0.5)
    with pytest.raises(ConfigError, match="slurm_cluster 'pbs'.*allowed: slurm, local"):
        Executor("slurm", slurm_cluster="pbs")
    with pytest.raises(ConfigError, match="slurm_time"):
        Executor("slurm", slurm_time=0)


def sweep_command(spec, root, *extra) -> list[str]:
    return [sys.executable, "-m", "tasbench.cli", "sweep", str(spec), "--out", str(root), "--threads", "1", *LATENCY]


@pytest.mark.slow
def test_a_submitit_sweep_killed_with_its_jobs_resumes_to_the_uninterrupted_numbers(tmp_path, capsys):
    spec = write_spec(tmp_path, teacher={"epochs": 3, "batch_size": 32}, recipes=[{"name": "kd", "epochs": 3}])
    runs = load_sweep(spec).runs
    env = {**os.environ, "WANDB_MODE": "disabled"}
    began = time.perf_counter()
    subprocess.run(sweep_command(spec, tmp_path / "ref"), check=True, env=env, capture_output=True)
    local_s = time.perf_counter() - began

    slurm = [*sweep_command(spec, tmp_path / "root"), "--executor", "slurm", "--slurm-cluster", "local"]
    slurm += ["--workers", "2", "--slurm-time", "10"]
    began = time.perf_counter()
    first = subprocess.Popen(slurm, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)
    # Kill once the runs are under way: the teacher finished, a run has written its first retraining checkpoint.
    deadline = time.time() + 300
    while not any((cfg.directory(tmp_path / "root") / "checkpoint.pt").exists() for cfg in runs):
        assert first.poll() is None, first.stderr.read()
        assert time.time() < deadline, "no run started within 300 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep, submitit's job controllers and the jobs: a lost node
    first.wait()
    killed_s = time.perf_counter() - began
    assert not all((cfg.directory(tmp_path / "root") / "metrics.json").exists() for cfg in runs)

    began = time.perf_counter()
    second = subprocess.run(slurm, env=env, capture_output=True, text=True)
    resumed_s = time.perf_counter() - began
    assert second.returncode == 0, second.stderr
    assert "1 runs already done" in second.stderr or "0 runs already done" in second.stderr
    assert_same_runs(runs, tmp_path / "ref", tmp_path / "root")
    assert_same_results(runs[0].teacher_directory(tmp_path / "ref"), runs[0].teacher_directory(tmp_path / "root"))
    logs = list((tmp_path / "root" / "slurm").glob("*/*_log.err"))
    assert logs, "submitit's logs are kept under the results root"
    with capsys.disabled():
        print(
            f"\nsubmitit local executor, tiny spec (1 teacher, {len(runs)} runs): local sequential {local_s:.1f} s; "
            f"slurm-local killed after {killed_s:.1f} s, resumed in {resumed_s:.1f} s"
        )

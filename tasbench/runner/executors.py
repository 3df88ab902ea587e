"""Where a sweep's runs execute: here one after another, in N local worker processes, or on a Ray cluster.

Every executor works in two stages: first the distinct teachers the unfinished runs need (each trained once,
however many runs share it), then the runs. A run is `experiment.run_one`, which skips a finished run and resumes
an interrupted one, so any executor can be killed and started again, and two executors can share a root: each
teacher and each run directory is guarded by a lock (locks.py) that dies with its holder. A local executor skips a
run another process holds and comes back to it when the rest is done (it is then finished, or resumed here if its
holder died); a teacher is waited for, since every run behind it needs it anyway.

    >>> execute(sweep.runs, "runs", Executor("local", workers=2), device="cpu")   # 2 processes, 1 thread each
    >>> execute(sweep.runs, "/shared/runs", Executor("ray", address="ray://head:10001"), device="cuda")
    >>> execute(sweep.runs, "runs", Executor("local", workers=16, runs_per_gpu=2), device="cuda")  # 8-GPU box

With `device="cuda"` the local workers are spread over every visible GPU, each pinned to one (gpus.py).

Failures: with `fail_fast` (the library default) the first failing run stops everything, as an exception. Without
it, a failed run is recorded in its directory (failures.py), the runs that do not need it go on, and `execute`
raises `RunsFailed` at the end, carrying the finished runs' metrics and one line per failure; a failed teacher fails
only the runs that need it. Runs whose method options cannot work on their net (`Pruner.check`) are named before
anything trains: with `fail_fast` as a ConfigError, else as failures that never start.

Recompute (`rerun`): finished runs are reused, stale or not (run_state.py), unless `rerun="stale"` (stale teachers
and runs are computed again, and with a teacher every run that used it) or `rerun="all"` (every run given, and its
teacher). The old results move to `<run>/superseded-<time>/` first (supersede.py), under the run's lock.

An interrupt (KeyboardInterrupt, or the CLI's SIGTERM handler) stops worker processes before it propagates.

With Ray, every node must see `root` (a shared file system) and have tas-bench installed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tasbench.bounds import MAX_THREADS, MAX_WORKERS, check_fields
from tasbench.data import load_data
from tasbench.device import parse_device
from tasbench.errors import ConfigError, StorageError, choice_error
from tasbench.runner.cost import job_macs
from tasbench.runner.experiment import LATENCY_BATCHES, RunConfig, RunNotFinished, ensure_teacher, read_metrics, run_one
from tasbench.runner.failures import read_failure, record_failure, summary
from tasbench.runner.gpus import worker_gpus
from tasbench.runner.locks import directory_lock
from tasbench.runner.progress import SweepBar, sweep_bar
from tasbench.runner.run_state import run_state, teacher_state
from tasbench.runner.slurm import CLUSTERS, MAX_SLURM_TIME, SLURM_THREADS, SLURM_TIME
from tasbench.runner.spec import check_runs, invalid_runs
from tasbench.runner.supersede import finish_superseding, supersede
from tasbench.runner.worker_pool import submit, worker_pool

EXECUTORS = ("local", "ray", "slurm")
RERUN = ("", "stale", "all")


def worker_threads(executor: Executor) -> int:
    """Torch threads per job: `--threads`, else this machine's cores shared among the local workers; a Slurm job
    gets SLURM_THREADS (its cpus-per-task): the cores of the machine submitting it say nothing of a node."""
    if executor.threads:
        return executor.threads
    if executor.kind == "slurm":
        return SLURM_THREADS
    return max(1, (os.cpu_count() or 1) // executor.workers)


class WorkerDied(RuntimeError):
    """A local worker process vanished mid-run (SIGKILL, the OOM killer); nothing finished is lost."""


class RunsFailed(RuntimeError):
    """Some runs failed (`fail_fast=False`); the others finished. `results` holds each run's metrics in order (None
    where it failed), `failures` one line per failed run."""

    def __init__(self, results: list[dict | None], failures: list[str]) -> None:
        super().__init__(f"{len(failures)} of {len(results)} runs failed")
        self.results, self.failures = results, failures


@dataclass(frozen=True)
class Executor:
    """How to execute: `kind` local or ray; `workers` processes (local) or concurrent tasks (ray)."""

    kind: str = "local"
    workers: int = 1
    address: str | None = None  # ray only: the cluster ("auto", "ray://host:10001"); None starts a local one
    threads: int = 0  # torch threads per worker (0: the cores here divided among the workers)
    gpus_per_run: float = 0  # ray, slurm: GPUs each run reserves (slurm: whole GPUs)
    runs_per_gpu: int = 1  # local with --device cuda: workers per GPU (gpus.py)
    slurm_partition: str | None = None  # slurm only (slurm.py), and the fields below
    slurm_time: int = SLURM_TIME  # minutes per job; a job that reaches it is requeued and resumes
    slurm_array_parallelism: int = 64  # jobs of an array running at once
    slurm_cluster: str = "slurm"  # "local": submitit's local executor (the tests)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise choice_error("executor", self.kind, EXECUTORS)
        check_fields(
            self,
            [
                ("workers", 1 <= self.workers <= MAX_WORKERS, f"in [1, {MAX_WORKERS}]"),
                ("threads", 0 <= self.threads <= MAX_THREADS, f"in [0, {MAX_THREADS}] (0: cores / workers)"),
                ("gpus_per_run", self.gpus_per_run >= 0, ">= 0"),
                ("runs_per_gpu", 1 <= self.runs_per_gpu <= MAX_WORKERS, f"in [1, {MAX_WORKERS}]"),
                ("slurm_time", 1 <= self.slurm_time <= MAX_SLURM_TIME, f"in [1, {MAX_SLURM_TIME}] minutes"),
                (
                    "slurm_array_parallelism",
                    1 <= self.slurm_array_parallelism <= MAX_WORKERS,
                    f"in [1, {MAX_WORKERS}]",
                ),
            ],
        )
        if self.address and self.kind != "ray":
            raise ConfigError("--address names a Ray cluster; it needs --executor ray")
        if self.runs_per_gpu != 1 and self.kind != "local":
            raise ConfigError(
                f"--runs-per-gpu {self.runs_per_gpu} shares each GPU among local workers; it needs --executor local "
                "(Ray: --gpus-per-run 0.25 shares a GPU among 4 runs)"
            )
        if self.gpus_per_run and self.kind == "local":
            raise ConfigError(
                f"--gpus-per-run {self.gpus_per_run:g} reserves GPUs on a Ray or Slurm cluster; it needs "
                "--executor ray or slurm (the local executor runs on --device)"
            )
        if self.kind == "slurm" and self.gpus_per_run != int(self.gpus_per_run):
            raise ConfigError(f"--gpus-per-run {self.gpus_per_run:g}: a Slurm job takes whole GPUs (0, 1, 2, ...)")
        if self.slurm_cluster not in CLUSTERS:
            raise choice_error("slurm_cluster", self.slurm_cluster, CLUSTERS)
        slurm_only = [
            (f"--slurm-partition {self.slurm_partition}", self.slurm_partition is not None),
            (f"--slurm-time {self.slurm_time}", self.slurm_time != SLURM_TIME),
            (f"--slurm-array-parallelism {self.slurm_array_parallelism}", self.slurm_array_parallelism != 64),
            (f"--slurm-cluster {self.slurm_cluster}", self.slurm_cluster != "slurm"),
        ]
        for flag, given in slurm_only:
            if given and self.kind != "slurm":
                raise ConfigError(f"{flag} is a Slurm job setting; it needs --executor slurm")


@dataclass(frozen=True)
class Job:
    """One unit of work, picklable so that it can cross into a worker process or a Ray task."""

    stage: str  # "teacher" or "run"
    cfg: RunConfig
    root: str
    device: str
    data_dir: str | None
    threads: int  # torch threads in a worker process (a sequential sweep keeps the caller's setting)
    wandb: object = None  # wandb_log.WandbSettings or None
    latency_batches: tuple[int, ...] = LATENCY_BATCHES
    wait: bool = True  # False: a run another process holds is left to it ("busy"), to be tried again later
    rerun: str = ""  # "stale" / "all": move earlier results aside first, if they are stale / older than `since`
    since: float = 0.0  # when the sweep started (time.time()): with rerun="all", newer results are its own
    fail_fast: bool = True  # True: a failure is raised (after it is recorded); False: work() returns "failed"
    progress: bool = False  # this run's own bars (teacher, search, retraining): for the sequential executor

    @property
    def directory(self) -> Path:
        return self.cfg.teacher_directory(self.root) if self.stage == "teacher" else self.cfg.directory(self.root)

    @property
    def title(self) -> str:
        cfg = self.cfg
        if self.stage == "teacher":
            return f"teacher: {cfg.network} seed={cfg.seed}"
        return f"run: {run_name(cfg)}"


def work(job: Job) -> str:
    """Do one job in this process, what every executor calls; says what happened: "ran" (here), "found" (finished
    by another process, or before), "busy" (another process holds the run, and `job.wait` is False) or "failed"
    (recorded in the run's error.json; only with `job.fail_fast` False, else the error is raised)."""
    # Here: a Ray task resolves "auto" (and checks "cuda:N") on its own node. A device this machine lacks fails
    # every job alike, before anything is written: not a failure of this run.
    device = parse_device(job.device)
    try:
        if job.rerun and not _make_room(job):
            return "busy"
        return _teacher(job, device) if job.stage == "teacher" else _run(job, device)
    except StorageError:  # the results root itself is full or read-only: every later run would fail the same way
        raise
    except Exception as e:
        record_failure(job.directory, e, job.stage)
        if job.fail_fast:
            raise
        return "failed"


def _teacher(job: Job, device: torch.device) -> str:
    if teacher_state(job.cfg, job.root).status == "done":  # not a damaged one: ensure_teacher moves it aside
        return "found"
    ensure_teacher(job.cfg, job.root, load_data(job.cfg.data, job.data_dir), device, job.progress)
    return "ran"


def _run(job: Job, device: torch.device) -> str:
    on_epoch = tracker = None
    if job.wandb is not None and not (job.directory / "metrics.json").exists():
        from tasbench.report.wandb_log import WandbRun

        tracker = WandbRun(job.wandb, job.cfg, job.root)
        on_epoch = tracker.on_epoch
    metrics = run_one(
        job.cfg,
        job.root,
        device=device,
        data_dir=job.data_dir,
        on_epoch=on_epoch,
        latency_batches=job.latency_batches,
        wait=job.wait,
        progress=job.progress,
    )
    if metrics is None:
        return "busy"
    ran = metrics["timing"].get("pid") == os.getpid()  # the process that computed a run records its pid
    if tracker is not None and ran:  # a tracker starts with the first epoch logged here: none for a found run
        tracker.finish(metrics)
    return "ran" if ran else "found"


def _make_room(job: Job) -> bool:
    """Move the job's earlier results aside if it is to be recomputed; False if another process holds it."""
    with directory_lock(job.directory, wait=job.wait) as held:
        if not held:
            return False
        finish_superseding(job.directory)
        state = teacher_state(job.cfg, job.root) if job.stage == "teacher" else run_state(job.cfg, job.root)
        if job.rerun == "all":
            params = job.directory / "params.json"  # written when a run starts: older means not this sweep's
            old = state.status != "todo" and (not params.exists() or params.stat().st_mtime < job.since)
        else:
            old = bool(state.stale)
        if old:
            supersede(job.directory)
    return True


def jobs(
    runs: list[RunConfig],
    root: str | Path,
    device: str,
    data_dir: str | None,
    threads: int,
    wandb: object = None,
    latency_batches: tuple[int, ...] = LATENCY_BATCHES,
    rerun: str = "",
    fail_fast: bool = True,
    progress: bool = False,
) -> tuple[list[Job], list[Job]]:
    """(teacher jobs, run jobs) for the runs that are not finished or are to be recomputed; each teacher once."""
    if rerun not in RERUN:
        raise choice_error("rerun mode", rerun, RERUN)
    teachers: dict[Path, RunConfig] = {}
    for cfg in runs:
        teachers.setdefault(cfg.teacher_directory(root), cfg)
    redo = {d for d, cfg in teachers.items() if rerun == "all" or (rerun == "stale" and teacher_state(cfg, root).stale)}
    todo = []
    for cfg in runs:
        state = run_state(cfg, root)
        if (
            state.status != "done"
            or rerun == "all"
            or (rerun == "stale" and state.stale)
            or cfg.teacher_directory(root) in redo
        ):
            todo.append(cfg)
    needed = {cfg.teacher_directory(root) for cfg in todo}

    def make(stage: str, cfg: RunConfig) -> Job:
        return Job(
            stage,
            cfg,
            str(root),
            device,
            data_dir,
            threads,
            wandb,
            latency_batches,
            rerun=rerun,
            since=time.time(),
            fail_fast=fail_fast,
            progress=progress,
        )

    teacher_jobs = [
        make("teacher", cfg)
        for d, cfg in teachers.items()
        if d in needed and (d in redo or teacher_state(cfg, root).status != "done")
    ]
    return teacher_jobs, [make("run", cfg) for cfg in todo]


def execute(
    runs: list[RunConfig],
    root: str | Path,
    executor: Executor = Executor(),
    *,
    device: str = "cpu",
    data_dir: str | None = None,
    wandb: object = None,
    latency_batches: tuple[int, ...] = LATENCY_BATCHES,
    log=print,
    rerun: str = "",
    fail_fast: bool = True,
    progress: bool = False,
) -> list[dict]:
    """Run every unfinished run of `runs` under `root` (and recompute what `rerun` asks); returns the metrics of all
    of them, in order. Raises `RunsFailed` when runs failed and `fail_fast` is False (see the module docstring)."""
    threads = worker_threads(executor)
    if fail_fast:
        check_runs(runs)
    failures = {i: f"invalid ({why})" for i, why in invalid_runs(runs).items()}
    valid = [cfg for i, cfg in enumerate(runs) if i not in failures]
    teacher_jobs, run_jobs = jobs(
        valid,
        root,
        device,
        data_dir,
        threads,
        wandb,
        latency_batches,
        rerun,
        fail_fast,
        progress and executor.workers == 1 and executor.kind == "local",
    )
    log(
        f"{len(runs) - len(run_jobs) - len(failures)} runs already done, {len(run_jobs)} to run, "
        f"{len(teacher_jobs)} teachers to train" + (f", {len(failures)} invalid runs skipped" if failures else "")
    )
    total = sum(job_macs(job.stage, job.cfg) for job in teacher_jobs + run_jobs)
    with sweep_bar(total, len(run_jobs), progress, log, executor.workers) as bar:
        if executor.kind != "local" or executor.workers == 1:
            _stages(executor, teacher_jobs, run_jobs, root, bar, None)
        elif run_jobs:
            # spawn, not fork: a forked child inherits torch's thread pool in an undefined state. One pool serves
            # both stages: starting a worker (importing torch) costs seconds.
            workers = min(executor.workers, len(run_jobs))
            with worker_pool(workers, threads, worker_gpus(device, workers, executor.runs_per_gpu)) as pool:
                _stages(executor, teacher_jobs, run_jobs, root, bar, pool)
    results = []
    for i, cfg in enumerate(runs):
        try:  # read only: a run left unfinished here (failed, invalid, its teacher failed) is named, never computed
            results.append(read_metrics(cfg, root))
            continue
        except RunNotFinished:
            results.append(None)
        if i not in failures:
            own, teacher = read_failure(cfg.directory(root)), read_failure(cfg.teacher_directory(root))
            failures[i] = (
                summary(own) if own else f"its teacher failed ({summary(teacher)})" if teacher else "not finished"
            )
    if failures:
        raise RunsFailed(
            results, [f"{run_name(runs[i])} ({runs[i].directory(root)}): {failures[i]}" for i in sorted(failures)]
        )
    return results


def _stages(
    executor: Executor,
    teacher_jobs: list[Job],
    run_jobs: list[Job],
    root: str | Path,
    bar: SweepBar,
    pool: concurrent.futures.Executor | None,
) -> None:
    """Teachers first, then the runs whose teacher did not fail."""
    for stage in ("teacher", "run"):
        if stage == "teacher":
            todo = teacher_jobs
        else:
            failed = {job.directory for job in teacher_jobs if read_failure(job.directory)}
            todo = [job for job in run_jobs if job.cfg.teacher_directory(root) not in failed]
            for job in run_jobs:
                if job not in todo:
                    bar.write(f"run skipped (its teacher failed): {_describe(job)}")
                    bar.finished(job.title, job_macs(job.stage, job.cfg), True)
        if executor.kind == "ray":
            from tasbench.runner.ray import run_on_ray

            n = len(todo)
            run_on_ray(todo, executor, lambda job, outcome, i, n=n: _report(bar, job, outcome, i, n, " on Ray"))
        elif executor.kind == "slurm":
            from tasbench.runner.slurm import run_on_slurm

            n = len(todo)
            run_on_slurm(
                todo, executor, root, lambda job, outcome, i, n=n: _report(bar, job, outcome, i, n, " on Slurm")
            )
        elif pool is None:
            _sequential(todo, bar)
        else:
            busy = _in_pool(pool, [dataclasses.replace(job, wait=False) for job in todo], bar)
            _in_pool(pool, busy, bar)  # now waiting: their holders finish them, or died and we resume them


def _sequential(stage: list[Job], bar: SweepBar) -> None:
    # A run that another sweep on this root is running is skipped, and waited for once the rest is done: this
    # process stays busy instead of queueing behind the other one.
    busy = []
    for i, job in enumerate(stage):
        bar.started(job.title)
        outcome = work(dataclasses.replace(job, wait=False))
        if outcome == "busy":
            busy.append(job)
            bar.running.remove(job.title)
            bar.write(f"[{i + 1}/{len(stage)}] {job.stage} {_OUTCOMES[outcome]}: {_describe(job)}")
        else:
            _report(bar, job, outcome, i, len(stage))
    for job in busy:
        bar.started(job.title)
        _report(bar, job, work(job), None, len(stage))


def _in_pool(pool: concurrent.futures.Executor, stage: list[Job], bar: SweepBar) -> list[Job]:
    """Run `stage` in the worker pool; returns the jobs that were busy elsewhere (with `wait=True` for a retry)."""
    futures = {submit(pool, work, job): job for job in stage}
    for job in stage:
        bar.started(job.title)
    busy = []
    for i, future in enumerate(concurrent.futures.as_completed(futures)):
        try:
            outcome = future.result()  # re-raises a worker's error
        except concurrent.futures.process.BrokenProcessPool:
            raise WorkerDied(
                "a worker process died (killed, or out of memory); finished runs are kept "
                "and the same command resumes the others"
            ) from None
        job = futures[future]
        if outcome == "busy":
            busy.append(dataclasses.replace(job, wait=True))
            bar.running.remove(job.title)
            bar.write(f"[{i + 1}/{len(stage)}] {job.stage} {_OUTCOMES[outcome]}: {_describe(job)}")
        else:
            _report(bar, job, outcome, i, len(stage))
    return busy


def _report(bar: SweepBar, job: Job, outcome: str, i: int | None, n: int, where: str = "") -> None:
    what = _OUTCOMES[outcome] + where
    if outcome == "failed":
        failure = read_failure(job.directory)
        what += f" ({summary(failure) if failure else 'unknown error'})"
    count = f"[{i + 1}/{n}] " if i is not None else ""
    bar.write(f"{count}{job.stage} {what}: {_describe(job)}")
    bar.finished(job.title, job_macs(job.stage, job.cfg), job.stage == "run")


_OUTCOMES = {
    "ran": "done",
    "found": "done by another process",
    "failed": "FAILED",
    "busy": "busy in another process; coming back to it",
}


def _describe(job: Job) -> str:
    cfg = job.cfg
    if job.stage == "teacher":
        return f"{cfg.network} teacher seed={cfg.seed} -> {job.directory}"
    return f"{run_name(cfg)} -> {job.directory}"


def run_name(cfg: RunConfig) -> str:
    return f"{cfg.name} {cfg.network} ratio={cfg.ratio} recipe={cfg.recipe.name} seed={cfg.seed}"

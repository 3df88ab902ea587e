"""Where a sweep's runs execute: here one after another, in N local worker processes, or on a Ray cluster.

Every executor works in two stages: first the distinct teachers the unfinished runs need (each trained once,
however many runs share it), then the runs. A run is `experiment.run_one`, which skips a finished run and resumes
an interrupted one, so any executor can be killed and started again, and two executors can share a root: each
teacher and each run directory is guarded by a lock (locks.py) that dies with its holder. A local executor skips a
run another process holds and comes back to it when the rest is done (it is then finished, or resumed here if its
holder died); a teacher is waited for, since every run behind it needs it anyway.

    >>> execute(sweep.runs, "runs", Executor("local", workers=2), device="cpu")   # 2 processes, 1 thread each
    >>> execute(sweep.runs, "/shared/runs", Executor("ray", address="ray://head:10001"), device="cuda")

With Ray, every node must see `root` (a shared file system) and have tas-bench installed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from tasbench.data import load_data
from tasbench.device import parse_device
from tasbench.errors import ConfigError, choice_error
from tasbench.experiment import LATENCY_BATCHES, RunConfig, ensure_teacher, run_one

EXECUTORS = ("local", "ray")


class WorkerDied(RuntimeError):
    """A local worker process vanished mid-run (SIGKILL, the OOM killer); nothing finished is lost."""


@dataclass(frozen=True)
class Executor:
    """How to execute: `kind` local or ray; `workers` processes (local) or concurrent tasks (ray)."""

    kind: str = "local"
    workers: int = 1
    address: str | None = None  # ray only: the cluster ("auto", "ray://host:10001"); None starts a local one
    threads: int = 0  # torch threads per worker (0: the cores here divided among the workers)
    gpus_per_run: float = 0  # ray only: GPUs each run reserves

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise choice_error("executor", self.kind, EXECUTORS)
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.address and self.kind != "ray":
            raise ConfigError("--address names a Ray cluster; it needs --executor ray")


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


def work(job: Job) -> str:
    """Do one job in this process, what every executor calls; says what happened: "ran" (here), "found" (finished
    by another process, or before), or "busy" (another process holds the run, and `job.wait` is False)."""
    device = parse_device(job.device)  # here: a Ray task resolves "auto" (and checks "cuda:N") on its own node
    if job.stage == "teacher":
        ensure_teacher(job.cfg, job.root, load_data(job.cfg.data, job.data_dir), device)
        return "ran"
    on_epoch = tracker = None
    if job.wandb is not None and not (job.cfg.directory(job.root) / "metrics.json").exists():
        from tasbench.wandb_log import WandbRun

        tracker = WandbRun(job.wandb, job.cfg, job.root)
        on_epoch = tracker.on_epoch
    metrics = run_one(job.cfg, job.root, device=device, data_dir=job.data_dir, on_epoch=on_epoch,
                      latency_batches=job.latency_batches, wait=job.wait)  # fmt: skip
    if metrics is None:
        return "busy"
    ran = metrics["timing"]["pid"] == os.getpid()  # the process that computed a run records its pid
    if tracker is not None and ran:  # a tracker starts with the first epoch logged here: none for a found run
        tracker.finish(metrics)
    return "ran" if ran else "found"


def jobs(runs: list[RunConfig], root: str | Path, device: str, data_dir: str | None, threads: int, wandb: object = None,
         latency_batches: tuple[int, ...] = LATENCY_BATCHES) -> tuple[list[Job], list[Job]]:  # fmt: skip
    """(teacher jobs, run jobs) for the runs that are not finished; each needed teacher appears once."""
    todo = [cfg for cfg in runs if not (cfg.directory(root) / "metrics.json").exists()]
    teachers = {}
    for cfg in todo:
        if not (cfg.teacher_directory(root) / "metrics.json").exists():
            teachers.setdefault(cfg.teacher_directory(root), cfg)
    make = lambda stage, cfg: Job(stage, cfg, str(root), device, data_dir, threads, wandb, latency_batches)  # noqa: E731
    return [make("teacher", cfg) for cfg in teachers.values()], [make("run", cfg) for cfg in todo]


def execute(runs: list[RunConfig], root: str | Path, executor: Executor = Executor(), *, device: str = "cpu",
            data_dir: str | None = None, wandb: object = None, latency_batches: tuple[int, ...] = LATENCY_BATCHES,
            log=print) -> list[dict]:  # fmt: skip
    """Run every unfinished run of `runs` under `root`; returns the metrics of all of them, in order."""
    threads = executor.threads or max(1, (os.cpu_count() or 1) // executor.workers)
    teacher_jobs, run_jobs = jobs(runs, root, device, data_dir, threads, wandb, latency_batches)
    log(f"{len(runs) - len(run_jobs)} runs already done, {len(run_jobs)} to run, {len(teacher_jobs)} teachers to train")
    if executor.kind == "ray":
        from tasbench.ray_executor import run_on_ray

        for stage in (teacher_jobs, run_jobs):  # Ray tasks wait for a run another process holds
            run_on_ray(stage, executor, log)
    elif executor.workers == 1:
        for stage in (teacher_jobs, run_jobs):
            # A run that another sweep on this root is running is skipped, and waited for once the rest is done:
            # this process stays busy instead of queueing behind the other one.
            busy = []
            for i, job in enumerate(stage):
                outcome = work(dataclasses.replace(job, wait=False))
                if outcome == "busy":
                    busy.append(job)
                log(f"[{i + 1}/{len(stage)}] {job.stage} {_OUTCOMES[outcome]}: {_describe(job)}")
            for job in busy:
                log(f"{job.stage} {_OUTCOMES[work(job)]}: {_describe(job)}")
    elif run_jobs:
        # spawn, not fork: a forked child inherits torch's thread pool in an undefined state. One pool serves both
        # stages: starting a worker (importing torch) costs seconds.
        context = multiprocessing.get_context("spawn")
        workers = min(executor.workers, len(run_jobs))
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads,
                                                    initargs=(threads,)) as pool:  # fmt: skip
            for stage in (teacher_jobs, run_jobs):
                busy = _in_pool(pool, [dataclasses.replace(job, wait=False) for job in stage], log)
                _in_pool(pool, busy, log)  # now waiting: their holders finish them, or died and we resume them
    # Every run is finished now; reading them back in order also covers the ones that were skipped.
    return [run_one(cfg, root, device=torch.device("cpu")) for cfg in runs]


_OUTCOMES = {"ran": "done", "found": "done by another process",
             "busy": "busy in another process; coming back to it"}  # fmt: skip


def _in_pool(pool: concurrent.futures.Executor, stage: list[Job], log) -> list[Job]:
    """Run `stage` in the worker pool; returns the jobs that were busy elsewhere (with `wait=True` for a retry)."""
    futures = {pool.submit(work, job): job for job in stage}
    busy = []
    for i, future in enumerate(concurrent.futures.as_completed(futures)):
        try:
            outcome = future.result()  # re-raises a worker's error
        except concurrent.futures.process.BrokenProcessPool:
            raise WorkerDied("a worker process died (killed, or out of memory); finished runs are kept "
                             "and the same command resumes the others") from None
        job = futures[future]
        if outcome == "busy":
            busy.append(dataclasses.replace(job, wait=True))
        log(f"[{i + 1}/{len(stage)}] {job.stage} {_OUTCOMES[outcome]}: {_describe(job)}")
    return busy


def _describe(job: Job) -> str:
    cfg = job.cfg
    if job.stage == "teacher":
        return f"{cfg.network} teacher seed={cfg.seed} -> {cfg.teacher_directory(job.root)}"
    return f"{cfg.name} {cfg.network} ratio={cfg.ratio} recipe={cfg.recipe.name} seed={cfg.seed} -> " \
           f"{cfg.directory(job.root)}"  # fmt: skip

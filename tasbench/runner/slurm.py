"""Runs as Slurm jobs through submitit (`--executor slurm`): the teachers as one job array, then the runs as another.

    tas-bench sweep cifar10 --data-dir /shared/cifar --out /shared/runs --device cuda --executor slurm \
        --slurm-partition gpu --slurm-time 1440 --gpus-per-run 1 --slurm-array-parallelism 16

Each job is one `executors.work(job)`: it writes its run directory exactly as a local worker does, so a sweep
started on Slurm can be killed and finished locally or resubmitted. submitit's logs and pickles go under
`<root>/slurm/<job id>/` (`<array id>_<index>` on Slurm). A job that Slurm preempts or that reaches `--slurm-time`
is requeued by submitit (`Checkpointable`) and continues its run from its last checkpoint, as every resumed run
does. Every node must see the results root and the data (a shared file system) and have tas-bench installed.
Killing the sweep command leaves its Slurm jobs running; the same command, run again, waits for the runs they hold
(each run directory's lock) and submits the rest.

`--slurm-cluster local` runs the same jobs through submitit's local executor (real processes, real pickling, real
result files) on this machine: how the tests exercise this path without a Slurm cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tasbench.errors import ConfigError

CLUSTERS = ("slurm", "local")
SLURM_TIME = 24 * 60  # minutes per job, by default
MAX_SLURM_TIME = 365 * 24 * 60
SLURM_THREADS = 4  # CPUs (torch threads) per job: the data are augmented on the device, a few suffice
POLL_SECONDS = 1.0  # how often the sweep asks submitit whether jobs finished (it reads their result files)


def _checkpointable():
    import submitit

    class SlurmWork(submitit.helpers.Checkpointable):
        """`work(job)` in a Slurm job; on preemption or timeout submitit resubmits this same call (the default
        `checkpoint`), which resumes the run from the files it left."""

        def __call__(self, job) -> str:
            import torch

            from tasbench.runner.executors import work

            torch.set_num_threads(job.threads)
            return work(job)

    return SlurmWork()


def slurm_executor(executor, root: str | Path, threads: int):
    """A submitit executor for `executor` (executors.Executor of kind slurm), its logs under `root`/slurm."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--executor slurm needs submitit: pip install 'tas-bench[slurm]' (or pip install submitit)"
        ) from None
    folder = Path(root) / "slurm" / "%j"  # a job array's jobs are <array id>_<index>
    backend = submitit.AutoExecutor(folder=folder, cluster=executor.slurm_cluster)
    parameters = {
        "name": "tas-bench",
        "timeout_min": executor.slurm_time,
        "cpus_per_task": threads,
        "tasks_per_node": 1,
        "gpus_per_node": int(executor.gpus_per_run),
        "slurm_array_parallelism": executor.slurm_array_parallelism,
    }
    if executor.slurm_partition:
        parameters["slurm_partition"] = executor.slurm_partition
    backend.update_parameters(**parameters)
    return backend


def run_on_slurm(stage: list, executor, root: str | Path, report: Callable[[object, str, int], None]) -> None:
    """Submit `stage` (a list of executors.Job) as one job array and wait for all of it; `report(job, outcome, i)`
    hears of each finished one, in the order they finish. A job's exception (a failure with fail-fast) is raised
    here; a job that died without a result (killed, out of memory) is a RuntimeError naming its log."""
    if not stage:
        return
    from submitit.core.utils import UncompletedJobError

    threads = stage[0].threads
    backend = slurm_executor(executor, root, threads)
    submitted = backend.map_array(_checkpointable(), stage)
    pending = dict(zip(submitted, stage))
    done = 0
    try:
        while pending:
            for sub in [s for s in pending if s.done()]:
                job = pending.pop(sub)
                try:
                    outcome = sub.result()  # re-raises the job's exception (submitit's FailedJobError)
                except UncompletedJobError as e:
                    raise RuntimeError(
                        f"Slurm job {sub.job_id} ({job.title}) ended without a result (killed, out of memory or "
                        f"time?); its log: {sub.paths.stderr}; the same command resumes it ({str(e)[:200]})"
                    ) from None
                report(job, outcome, done)
                done += 1
            if pending:
                time.sleep(POLL_SECONDS)
    except BaseException:
        for sub in pending:
            sub.cancel(check=False)
        raise

"""Runs as Ray tasks: on a local Ray instance, or on a cluster (`--executor ray --address ray://head:10001`).

Each job becomes one task reserving 1 CPU (and `--gpus-per-run` GPUs); Ray places them on whatever nodes have room.
Every node must see the results root (a shared file system) and have tas-bench installed; a task writes its run
directory exactly as a local worker does, so a sweep can be started on Ray, killed, and finished locally. A task
that fails records its error in its run directory and returns "failed" (unless the job fails fast); an interrupt
cancels the tasks still pending or running.

    >>> run_on_ray(run_jobs, Executor("ray", workers=4, address="auto"), lambda job, outcome, i: print(outcome))
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tasbench.errors import ConfigError


def _task(job) -> str:
    from tasbench.runner.executors import work

    torch.set_num_threads(job.threads)
    return work(job)


def run_on_ray(stage: list, executor, report: Callable[[object, str, int], None]) -> None:
    """Run `stage` (a list of executors.Job) on Ray and wait for all of it; `report(job, outcome, i)` hears of each
    finished one. A task's exception (a failure with fail-fast) is raised here."""
    import ray

    if not ray.is_initialized():
        try:
            if executor.address:
                ray.init(address=executor.address, log_to_driver=False)
            else:  # a local instance sized to the requested parallelism
                ray.init(num_cpus=executor.workers, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ConfigError(f"cannot reach the Ray cluster at {executor.address!r}: {reason}") from None
    remote = ray.remote(num_cpus=1, num_gpus=executor.gpus_per_run, max_retries=0)(_task)
    pending = {remote.remote(job): job for job in stage}
    done = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            outcome = ray.get(ready[0])  # re-raises the task's exception
            report(job, outcome, done)
            done += 1
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise

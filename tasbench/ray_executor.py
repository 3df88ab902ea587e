"""Runs as Ray tasks: on a local Ray instance, or on a cluster (`--executor ray --address ray://head:10001`).

Each job becomes one task reserving 1 CPU (and `--gpus-per-run` GPUs); Ray places them on whatever nodes have room.
Every node must see the results root (a shared file system) and have tas-bench installed; a task writes its run
directory exactly as a local worker does, so a sweep can be started on Ray, killed, and finished locally.

    >>> run_on_ray(run_jobs, Executor("ray", workers=4, address="auto"), print)
"""

from __future__ import annotations

import torch

from tasbench.errors import ConfigError


def _task(job) -> dict:
    from tasbench.executors import work

    torch.set_num_threads(job.threads)
    return work(job)


def run_on_ray(stage: list, executor, log) -> None:
    """Run `stage` (a list of executors.Job) on Ray and wait for all of it; a failed task's error is raised here."""
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
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready[0])
        ray.get(ready[0])  # re-raises the task's exception
        done += 1
        log(f"[{done}/{len(stage)}] {job.stage} done on Ray: {job.cfg.name} {job.cfg.network} ratio={job.cfg.ratio} "
            f"seed={job.cfg.seed}")  # fmt: skip

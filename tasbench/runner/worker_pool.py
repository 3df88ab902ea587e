"""The local worker processes of `--workers N`: spawned, N torch threads each, and never outliving the sweep.

Ctrl-C in a terminal sends SIGINT to the whole process group, workers included; a worker would print its own
KeyboardInterrupt traceback and leave the pool half broken. So workers ignore SIGINT and SIGTERM, and the sweep
process, which handles both, kills them itself when it stops (`worker_pool`'s exit on any exception). If the sweep
process dies without a word (SIGKILL), Linux kills its workers too (PR_SET_PDEATHSIG). A worker killed mid-write
loses nothing: every result file is written atomically and its run lock dies with it.

    >>> with worker_pool(2, threads=1) as pool:
    ...     pool.submit(work, job)
    >>> with worker_pool(4, threads=4, gpus=["0", "1", "0", "1"]) as pool:   # 2 workers on each of 2 GPUs
    ...     pool.submit(work, job)

With `gpus`, each worker takes one entry as it starts and is pinned to that GPU (gpus.py).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from tqdm import tqdm

from tasbench.runner.gpus import pin_gpu

PR_SET_PDEATHSIG = 1  # linux/prctl.h
QUIET = {signal.SIGINT, signal.SIGTERM}  # what a worker leaves to the sweep process


def submit(pool: concurrent.futures.ProcessPoolExecutor, fn, *args) -> concurrent.futures.Future:
    """`pool.submit(fn, *args)` with SIGINT and SIGTERM blocked meanwhile: a submit may start a worker, which inherits
    the mask, so a Ctrl-C during the seconds it takes to import torch (before `init_worker` ignores it) cannot print a
    KeyboardInterrupt traceback there. The sweep process gets its own copy as soon as the mask is lifted."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, QUIET)
    try:
        return pool.submit(fn, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def init_worker(threads: int, gpu_slots=None) -> None:
    """Runs first in every worker process; `gpu_slots` a queue of GPUs, one taken here."""
    if gpu_slots is not None:
        pin_gpu(gpu_slots.get_nowait())  # before anything here initialises CUDA
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Started with both blocked (`submit`): a Ctrl-C while it imported torch waited, and is discarded now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, QUIET)
    # tqdm's default lock holds a multiprocessing semaphore, registered with the sweep's resource tracker; a killed
    # worker never unregisters it and the tracker warns about "leaked semaphore objects" at exit. Workers show no
    # bars, so a thread lock does.
    tqdm.set_lock(threading.RLock())
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextmanager
def worker_pool(
    workers: int, threads: int, gpus: list[str] | None = None
) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """A spawned process pool, worker i pinned to `gpus[i]` when given; on an exception (an interrupt, a failure
    with fail-fast) its workers are killed before the exception goes on, instead of finishing the runs they hold."""
    context = multiprocessing.get_context("spawn")
    slots = None
    if gpus is not None:
        slots = context.Queue()
        for gpu in gpus[:workers]:
            slots.put(gpu)
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(threads, slots)
    )
    try:
        yield pool
    except BaseException:
        kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def kill_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor.kill_workers() exists from Python 3.14 on; before, its processes are only in `_processes`.
    if hasattr(pool, "kill_workers"):
        pool.kill_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.join(timeout=10)

"""`--dry-run`: which runs of a sweep are done, stale, failed, invalid or to do, each run's budget, and what the rest
will cost per phase and in wall time.

Cost is counted in multiply-accumulates (cost.py) and turned into seconds by this machine's measured speed: a
quick calibration (calibrate.py: a few training steps of each net of the sweep, unpruned and at each target
ratio, on the sweep's device and threads per worker, as many at once as it has workers), corrected by a teacher
of this sweep that already finished here when there is one (its real seconds per MAC include what the
calibration leaves out: augmentation, the per-epoch evaluation and checkpoint). Jobs are then laid out on the
executor's workers as it runs them (teachers, then runs, each taken by the first free worker), plus a fixed cost
per job and the sweep's start (importing torch in the workers, building the data).

    $ tas-bench sweep benchmarks/proxy.yaml --dry-run --workers 2 --threads 1      # 2 idle cores
    sweep 'proxy': 16 runs: 0 done, 0 partial (resume), 16 to do; 2 teachers to train, 0 to reuse
    speed: 2.8e-11-5.5e-11 s/MAC (calibrated in 5.7 s, 2 at once, 1 thread each, on cpu)
    phase     work                TMAC   compute time
    teacher   2 nets             3.428   1m37s
    prune     6 trained          8.463   3m59s
    retrain   16 runs           11.428   8m07s
    distill   16 with KD         6.530   3m04s
    finish    eval+latency       0.830   0m35s
    wall time: 9m14s on 2 workers (estimated)

    todo     runs/tas/ea4153758e1f  TAS resnet20 ratio=0.5 recipe=kd seed=0 | teacher 6 ep (batch 128) | prune:
             search 4 ep x 15 steps (batch 64/half) | retrain: kd 5 ep (batch 128)
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from tasbench.arch import Arch
from tasbench.device import parse_device
from tasbench.errors import ConfigError
from tasbench.flop_target import scale_widths
from tasbench.flops import macs
from tasbench.pruner import get_pruner
from tasbench.runner.calibrate import train_rate
from tasbench.runner.cost import (
    distill_macs,
    finish_macs,
    makespan,
    prune_budget,
    prune_macs,
    retrain_epochs,
    student_macs,
    teacher_macs,
)
from tasbench.runner.executors import jobs
from tasbench.runner.experiment import RunConfig
from tasbench.runner.failures import read_failure, summary
from tasbench.runner.run_files import DAMAGED, TEACHER_METRICS, DamagedRunFile, read_run_file
from tasbench.runner.run_state import State, run_state, teacher_state
from tasbench.runner.spec import invalid_runs
from tasbench.runner.throughput import measured_rates

# Seconds a job costs beyond its training (loading its data, building its nets, writing its files), and a sweep's
# start (the worker processes, a Python with torch each). From the file times of a proxy sweep here (2 workers,
# load average ~3): a teacher's metrics.json came 2-3 s after its training ended, a run's 3-5 s (its final
# evaluation and latency timing are counted in MACs, the rest here), and the first teacher started 6 s after the
# command.
JOB_SECONDS = 3.0
START_SECONDS = 6.0


def rates(
    runs: list[RunConfig], root: str | Path, device: torch.device, threads: int, workers: int = 1
) -> tuple[dict, str]:
    """Seconds per MAC for each (network, ratio) the sweep trains (ratio 1.0: the unpruned net), each timed as
    `workers` trainings at once, and where they come from. A finished teacher's measured rate, when there is one,
    scales the calibrated ones."""
    table: dict[tuple[str, float], float] = {}
    began = time.perf_counter()
    for cfg in runs:
        for ratio, batch in ((1.0, cfg.teacher.batch_size), (cfg.ratio, cfg.recipe.batch_size)):
            if (cfg.network, ratio) not in table:
                arch = cfg.arch() if ratio == 1.0 else _thinned(cfg, ratio)
                table[cfg.network, ratio] = train_rate(arch, batch, device, threads, parallel=workers)
    per_worker = f"{workers} at once, {threads} thread{'s' * (threads > 1)} each"
    source = f"calibrated in {time.perf_counter() - began:.1f} s, {per_worker}, on {device}"
    for cfg in runs:
        path = cfg.teacher_directory(root) / "metrics.json"
        if path.exists():
            try:
                metrics = read_run_file(path, TEACHER_METRICS)
            except DamagedRunFile:  # to be trained afresh; the plan names it
                continue
            if metrics.get("environment", {}).get("threads") != threads or not metrics["train_seconds"]:
                continue  # timed with another thread count: it says little about this sweep
            scale = metrics["train_seconds"] / teacher_macs(cfg) / table[cfg.network, 1.0]
            table = {key: rate * scale for key, rate in table.items()}
            source += f", x{scale:.2f} to match the teacher that finished in {cfg.teacher_directory(root)}"
            break
    return table, source


def _timed_on(device: str) -> torch.device:
    """The device the calibration times: the sweep's, or this machine's CPU where it has none of that kind (a Ray
    sweep's nodes may have GPUs that the machine planning it lacks; the speed line names the device)."""
    try:
        return parse_device(device)
    except ConfigError:
        return torch.device("cpu")


def _thinned(cfg: RunConfig, ratio: float) -> Arch:
    """A net of about `ratio` of the FLOPs, to time the retraining of a pruned net (MACs ~ width squared)."""
    return scale_widths(cfg.arch(), ratio**0.5)


def describe(
    name: str,
    runs: list[RunConfig],
    root: str | Path,
    *,
    workers: int = 1,
    threads: int = 1,
    device: str = "cpu",
    calibrate: bool = False,
    rerun: str = "",
    throughput: dict | None = None,
) -> str:
    """The plan as text: summary lines, the speed, a cost table per phase and the wall time, one line per run.
    `rerun` ("stale", "all") counts what `execute(..., rerun=...)` would recompute as work to do. `throughput` (a
    `bench gpu` file, throughput.py) replaces the calibration: the costs are then GPU-hours of the measured GPU."""
    invalid = invalid_runs(runs)
    states = [State("invalid") if i in invalid else run_state(cfg, root) for i, cfg in enumerate(runs)]
    teacher_jobs, run_jobs = jobs(
        [cfg for i, cfg in enumerate(runs) if i not in invalid], root, device, None, threads, rerun=rerun
    )
    needed = {cfg.teacher_directory(root) for cfg, s in zip(runs, states) if s.status not in ("done", "invalid")}
    reused = len(needed - {job.directory for job in teacher_jobs})
    count = lambda what: sum(s.status == what for s in states)  # noqa: E731
    imported = sum(job.cfg.teacher_weights is not None for job in teacher_jobs)  # from a file: evaluated only
    lines = [
        f"sweep {name!r}: {len(runs)} runs: {count('done')} done, {count('partial')} partial (resume), "
        f"{count('todo')} to do; {len(teacher_jobs) - imported} teachers to train, "
        + (f"{imported} to import from their files, " if imported else "")
        + f"{reused} to reuse"
    ]
    stale = sum(bool(s.stale) for s in states)
    if stale or rerun:
        what = {
            "": "reused as they are (--rerun-stale recomputes them)",
            "stale": "to recompute (--rerun-stale)",
            "all": "to recompute, with every other run (--force)",
        }[rerun]
        lines.append(f"stale: {stale} runs computed by other code or from another teacher; {what}")
    failed = sum(bool(s.error) for s in states)
    if failed or invalid:
        lines.append(
            f"failed: {failed} runs failed when last tried (tried again); {len(invalid)} invalid (they "
            f"cannot run, see their lines)"
        )
    damaged = sum(bool(s.damaged) for s in states)
    if damaged:
        lines.append(
            f"damaged: {damaged} runs whose result files are damaged; their files move aside "
            f"(superseded-<time>{DAMAGED}/) and they are computed afresh"
        )
    for job in teacher_jobs:
        failure = read_failure(job.directory)
        if failure:
            lines.append(f"failed teacher (tried again): {job.directory}: {summary(failure)}")
        teacher = teacher_state(job.cfg, root)
        if teacher.damaged:
            lines.append(f"damaged teacher (trained afresh, its files kept aside): {job.directory}: {teacher.damaged}")
    todo, teachers_todo = [job.cfg for job in run_jobs], [job.cfg for job in teacher_jobs]
    if throughput is not None and todo:
        table, source = measured_rates(todo, throughput)
    elif calibrate and todo:
        table, source = rates(todo, root, _timed_on(device), threads, workers)
    else:
        table, source = {}, ""
    hours = None if throughput is None else "GPU-hours" if throughput.get("device_type") == "cuda" else "CPU-hours"
    lines += _costs(todo, teachers_todo, table, source, workers, hours)
    lines.append("")
    for i, (cfg, state) in enumerate(zip(runs, states)):
        lines.append(
            f"{state.label:<8} {cfg.directory(root)}  {cfg.name} {cfg.network} ratio={cfg.ratio} "
            f"recipe={cfg.recipe.name} seed={cfg.seed} | {budget(cfg)}"
        )
        damaged = f"{state.damaged}; its files move aside and it recomputes" if state.damaged else ""
        for why, text in (
            ("stale", state.stale),
            ("failed", state.error),
            ("invalid", invalid.get(i, "")),
            ("damaged", damaged),
        ):
            if text:
                lines.append(f"{'':<8}   {why}: {text}")
    return "\n".join(lines)


def budget(cfg: RunConfig) -> str:
    """What one run trains: 'teacher 6 ep (batch 128) | prune: search 4 ep x 15 steps (batch 64/half) | ...'."""
    pruning = prune_budget(cfg)
    pruner = get_pruner(cfg.method)
    shape = pruner.shape_note(cfg.arch(), cfg.options) if pruner.shape_note else None
    recipe = cfg.recipe
    weights = cfg.teacher_weights
    teacher = f"teacher {cfg.teacher.epochs} ep (batch {cfg.teacher.batch_size})"
    if weights:
        teacher = f"teacher from {weights.path}"
    return (
        f"{teacher} | "
        f"prune: {pruning.label if pruning else 'one-shot'}{f' ({shape})' if shape else ''} | "
        f"retrain: {recipe.name} {retrain_epochs(cfg)} ep (batch {recipe.batch_size})"
    )


def _costs(
    todo: list[RunConfig], teachers: list[RunConfig], table: dict, source: str, workers: int, hours: str | None = None
) -> list[str]:
    """The speed line, one row per phase (MACs and compute seconds, and with a throughput file the `hours` column:
    "GPU-hours"), and the wall time on `workers`."""
    full = lambda cfg: table.get((cfg.network, 1.0))  # noqa: E731
    pruned = lambda cfg: table.get((cfg.network, cfg.ratio))  # noqa: E731

    def prune_rate(cfg: RunConfig) -> float | None:
        # A search (pass cost > 1, TAS) at the measured search step's speed where a throughput file has one.
        budget, per_image = prune_budget(cfg), table.get((cfg.network, "search"))
        if budget is None or budget.pass_cost <= 1 or per_image is None or not prune_macs(cfg):
            return full(cfg)
        return (budget.train_images * per_image + budget.eval_images * macs(cfg.arch()) * full(cfg)) / prune_macs(cfg)

    phases = [
        ("teacher", f"{len(teachers)} nets", [(teacher_macs(c), full(c)) for c in teachers]),  # imported: eval
        ("prune", f"{sum(prune_macs(c) > 0 for c in todo)} trained", [(prune_macs(c), prune_rate(c)) for c in todo]),
        ("retrain", f"{len(todo)} runs", [(student_macs(c), pruned(c)) for c in todo]),
        ("distill", f"{sum(distill_macs(c) > 0 for c in todo)} with KD", [(distill_macs(c), full(c)) for c in todo]),
        ("finish", "eval+latency", [(finish_macs(c), pruned(c)) for c in todo]),
    ]
    known = bool(table)
    speeds = [rate for (_, ratio), rate in table.items() if ratio != "search"]  # "search": seconds per image
    lines = [
        f"speed: {min(speeds):.2g}-{max(speeds):.2g} s/MAC ({source})"
        if known
        else "speed: not measured (--dry-run calibrates it)"
    ]
    lines.append(f"{'phase':<9} {'work':<14} {'TMAC':>9}   compute time" + (f"   {hours}" if hours else ""))
    total = 0.0
    for phase, work, items in phases:
        cost = sum(m for m, _ in items)
        seconds = sum(m * r for m, r in items) if known else None
        total += seconds or 0.0
        column = f"   {seconds / 3600:>9.1f}" if hours and known else ""
        spent = _duration(seconds) if known else "unknown"
        lines.append(f"{phase:<9} {work:<14} {cost / 1e12:>9.3f}   {spent}{column}")
    if known and hours:
        lines.append(f"{hours}: {total / 3600:.1f} in all (one run at a time per device, at the measured speed)")
    if known:
        teacher_s = [teacher_macs(c) * full(c) + JOB_SECONDS for c in teachers]
        run_s = [
            prune_macs(c) * prune_rate(c)
            + distill_macs(c) * full(c)
            + (student_macs(c) + finish_macs(c)) * pruned(c)
            + JOB_SECONDS
            for c in todo
        ]
        wall = makespan(teacher_s, workers) + makespan(run_s, workers) + START_SECONDS
        lines.append(f"wall time: {_duration(wall)} on {workers} worker{'s' * (workers > 1)} (estimated)")
    return lines


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

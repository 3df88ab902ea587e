"""`--dry-run`: which runs of a sweep are done, half done or to do, and what the rest will cost per phase.

Cost is counted in multiply-accumulates, the unit the FLOP counter already gives exactly: one training image costs
about 3x the forward MACs (forward + two backward products), one test image 1x, per epoch. Where this root already
holds a finished teacher, its measured wall time turns MACs into seconds for this machine.

    $ tas-bench sweep benchmarks/proxy.yaml --dry-run
    sweep 'proxy': 6 runs: 0 done, 0 partial (resume), 6 to do; 2 teachers to train
    phase      work     TMAC   est. time
    teacher    2 nets   ...
"""

from __future__ import annotations

import json
from pathlib import Path

from tasbench.experiment import RunConfig
from tasbench.flops import macs

FULL_SIZES = {"proxy": None, "cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "imagenet": (1_281_167, 50_000)}


def status(cfg: RunConfig, root: str | Path) -> str:
    out = cfg.directory(root)
    if (out / "metrics.json").exists():
        return "done"
    return "partial" if (out / "checkpoint.pt").exists() or (out / "pruned.pt").exists() else "todo"


def sizes(cfg: RunConfig) -> tuple[int, int]:
    """(training images, test images) one epoch of `cfg` reads."""
    d = cfg.data
    n_train, n_test = (d.proxy_train, d.proxy_test) if d.dataset == "proxy" else FULL_SIZES[d.dataset]
    return d.subset or n_train, d.test_subset or n_test


def teacher_macs(cfg: RunConfig) -> float:
    n_train, n_test = sizes(cfg)
    return cfg.teacher.epochs * macs(cfg.arch()) * (3 * n_train + n_test)


def retrain_macs(cfg: RunConfig) -> float:
    """Estimated from the target ratio: the pruned shape is not known before the pruner has run."""
    n_train, n_test = sizes(cfg)
    full = macs(cfg.arch())
    pruned = cfg.ratio * full
    epochs = cfg.recipe.train_config(cfg.seed, full, max(1, round(pruned))).epochs
    per_image = pruned * 3 + (full if cfg.recipe.name == "kd" else 0)  # KD runs the teacher forward on every batch
    return epochs * (per_image * n_train + pruned * n_test)


def seconds_per_mac(runs: list[RunConfig], root: str | Path) -> float | None:
    """This machine's speed, measured by a teacher of this sweep that already finished (None if none has)."""
    for cfg in runs:
        path = cfg.teacher_directory(root) / "metrics.json"
        if path.exists():
            return json.loads(path.read_text())["train_seconds"] / teacher_macs(cfg)
    return None


def describe(name: str, runs: list[RunConfig], root: str | Path) -> str:
    """The plan as text: one summary line, a cost table per phase, one line per run."""
    states = [status(cfg, root) for cfg in runs]
    teachers = {}
    for cfg, state in zip(runs, states):
        if state != "done":
            teachers.setdefault(cfg.teacher_directory(root), cfg)
    teachers_todo = [cfg for d, cfg in teachers.items() if not (d / "metrics.json").exists()]
    todo = [cfg for cfg, state in zip(runs, states) if state != "done"]
    rate = seconds_per_mac(runs, root)
    searches = sorted({cfg.method for cfg in todo})
    rows = [
        ("teacher", f"{len(teachers_todo)} nets", sum(map(teacher_macs, teachers_todo))),
        ("prune", f"{len(todo)} runs", None),
        ("retrain", f"{len(todo)} runs", sum(map(retrain_macs, todo))),
    ]
    lines = [
        f"sweep {name!r}: {len(runs)} runs: {states.count('done')} done, {states.count('partial')} partial "
        f"(resume), {states.count('todo')} to do; {len(teachers_todo)} teachers to train, "
        f"{len(teachers) - len(teachers_todo)} to reuse",
        f"{'phase':<9} {'work':<10} {'TMAC':>10}   est. time",
    ]
    for phase, work, cost in rows:
        if cost is None:
            estimate = f"{'-':>10}   not estimated (method-specific: {', '.join(searches) or 'none'})"
        else:
            when = _duration(cost * rate) if rate else "unknown (no finished teacher here to time this machine)"
            estimate = f"{cost / 1e12:>10.3f}   {when}"
        lines.append(f"{phase:<9} {work:<10} {estimate}")
    lines.append("")
    for cfg, state in zip(runs, states):
        lines.append(f"{state:<8} {cfg.directory(root)}  {cfg.name} {cfg.network} ratio={cfg.ratio} "
                     f"recipe={cfg.recipe.name} seed={cfg.seed}")  # fmt: skip
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

"""Line up logged W&B runs with local run directories, row by row of the report's table, and flag the differences.

    >>> ours = collect("runs")
    >>> theirs = wandb_rows(logged_runs("runs/wandb"))           # or project_rows("entity/tas-bench")
    >>> table = compare(ours, theirs, tolerance=0.5)
    >>> table[table["differs"]]                                   # rows whose accuracy differs by > 0.5 points

Rows are matched on (dataset, network, method label, recipe, target ratio, configuration), after averaging over
seeds on each side, so a W&B project holding other seeds of the same configuration still lines up (a W&B run's
configuration comes from the config it logged: configurations.py). A row present on one side only is
reported as such (and counts as differing).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasbench.errors import ConfigError
from tasbench.report.tables import KEYS, run_row, summary
from tasbench.report.wandb_log import LOGGED
from tasbench.runner.run_files import read_run_file

COMPARED = ("top1_mean", "drop_mean", "macs")
LOGGED_BESIDE = ("hash", "label", "sweep")  # what wandb_log adds to the run's hashed config when it logs it
LOGGED_SCHEMA = {"config": dict, "summary": dict, "history": list, "group": str, "complete": bool}


def logged_runs(directory: str | Path) -> list[dict]:
    """What the sweeps' W&B runs were sent, from the JSON each wrote into its own directory under `directory` (the
    sweep's `<root>/wandb`: offline runs, and online ones too); a damaged file is named (DamagedRunFile)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"W&B directory {str(directory)!r} does not exist or is not a directory")
    return [read_run_file(path, LOGGED_SCHEMA) for path in sorted(directory.rglob(LOGGED))]


def wandb_rows(runs: list[dict]) -> pd.DataFrame:
    """Table rows from W&B runs (`{"config", "summary", ...}`) that tas-bench logged; others are left out."""
    rows = [
        run_row(r["summary"], {k: v for k, v in r["config"].items() if k not in LOGGED_BESIDE})
        for r in runs
        if "teacher_hash" in r["summary"] and "top1" in r["summary"]
    ]
    if not rows:
        raise ConfigError("the W&B runs given hold no finished tas-bench run (none has a final summary)")
    return pd.DataFrame(rows)


def project_rows(project: str, timeout: int = 20) -> pd.DataFrame:
    """Table rows from a W&B project (`entity/project`) through the public API."""
    import wandb

    try:
        api = wandb.Api(timeout=timeout)
        runs = [{"config": dict(r.config), "summary": dict(r.summary)} for r in api.runs(project)]
    except Exception as e:  # noqa: BLE001 - network, auth and lookup failures come as many types; all mean "unreachable"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"cannot read W&B project {project!r}: {reason}") from None
    return wandb_rows(runs)


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per table key: each side's means, their deltas (theirs - ours), and whether they differ."""
    if not tolerance >= 0:
        raise ConfigError(f"tolerance must be >= 0 accuracy points, got {tolerance}")
    left = summary(ours)[[*KEYS, "seeds", *COMPARED]]
    right = summary(theirs)[[*KEYS, "seeds", *COMPARED]]
    merged = left.merge(right, on=KEYS, how="outer", suffixes=("_local", "_wandb"), indicator=True)
    for name in COMPARED:
        merged[f"delta_{name}"] = merged[f"{name}_wandb"] - merged[f"{name}_local"]
    merged["differs"] = (
        (merged["_merge"] != "both")
        | (merged["delta_top1_mean"].abs() > tolerance)
        | (merged["delta_drop_mean"].abs() > tolerance)
        | (merged["delta_macs"] != 0)
    )
    merged["found_in"] = merged.pop("_merge").map({"both": "both", "left_only": "local", "right_only": "wandb"})
    return merged

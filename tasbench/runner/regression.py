"""The proxy regression check: rerun a small sweep from scratch and compare it with the results stored in the repo.

    tas-bench regress            # benchmarks/regression.yaml in a fresh temporary root, vs regression/<cpu>.json
    tas-bench regress --update   # the one way to rewrite benchmarks/regression/<cpu>.json (never automatic)

Per run of the spec (every method at two ratios, one fixed seed) the check compares

- exactly:  the pruned net's MACs and its shape (`xchannels`, `xblocks`), the shape TAS searched included;
- within a tolerance: top-1, test loss and the last epoch's training loss (which the KD loss dominates), per run
  and as the mean over all runs.

The tolerance comes from the seed-to-seed spread that `--update` measures: it reruns the spec with more seeds
(`--spread-seeds`, each seed with its own teacher) and pools the per-run sample variances into one sigma per metric.
Two independent runs differ by sigma*sqrt(2) in standard deviation, so a run fails beyond K = 3 of those, and the
mean over the n runs beyond 3*sigma*sqrt(2/n): a small shift that moves every run (a changed KD temperature) is
caught by the mean even when no single run leaves its band. On one machine type with the same torch and thread
count, a CPU run repeats bit for bit, so any difference at all is a change in what the code computes.

Across CPU designs it does not: float sums come out in another order, and a TAS search at the edge of a FLOP band
picks another width (an Intel Xeon and an AMD EPYC gave TAS r0.7 28.0M and 27.4M MACs from the same code). So the
results are stored per CPU model, `benchmarks/regression/<cpu>.json`. On a CPU model with none stored, the check
compares with another model's file within the tolerances only, and says that the exact values were left out.

A stored file that is missing, unreadable or of another format (or for other runs than the spec's) is bad input:
the message says how to regenerate it.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from tasbench.checkpoint import load_checkpoint
from tasbench.errors import ConfigError
from tasbench.installation import REGRESSION_DIR
from tasbench.runner.experiment import RunConfig
from tasbench.runner.store import cpu_slug
from tasbench.untrusted import REGRESSION_JSON, read_bytes

FORMAT = "tas-bench-regression/1"
UPDATE = "tas-bench regress --update"
EXACT = ("macs", "xchannels", "xblocks")
TOLERATED = ("top1", "test_loss", "train_loss")
K = 3.0  # standard deviations of a difference between two runs


def run_key(cfg: RunConfig) -> str:
    return f"{cfg.name} r{cfg.ratio:g} s{cfg.seed}"


def observe(cfg: RunConfig, root: str | Path, metrics: dict) -> dict:
    """What the check compares for one finished run: its numbers, its shape, and the config that made them."""
    out = cfg.directory(root)
    arch = load_checkpoint(out / "pruned.pt")["arch"]
    with open(out / "log.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    return {
        "hash": out.name,
        "config": cfg.config(),
        "macs": metrics["macs"],
        "xchannels": list(arch["xchannels"]),
        "xblocks": list(arch["xblocks"]),
        "top1": metrics["top1"],
        "test_loss": metrics["test_loss"],
        "train_loss": float(last["train_loss"]),
    }


def seed_spread(runs: list[tuple[RunConfig, dict]]) -> dict:
    """Pooled seed-to-seed standard deviation of each tolerated metric, over the runs that differ only by seed."""
    groups: dict[tuple, list[dict]] = {}
    for cfg, seen in runs:
        groups.setdefault((cfg.name, cfg.network, cfg.ratio, cfg.recipe.name), []).append(seen)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        raise ConfigError("measuring the seed spread needs at least 2 seeds per run; pass --spread-seeds 1,2,3")
    sigma = {}
    for metric in TOLERATED:
        variances = [statistics.variance([seen[metric] for seen in group]) for group in groups.values()]
        sigma[metric] = math.sqrt(sum(variances) / len(variances))
    dof = sum(len(v) - 1 for v in groups.values())
    return {"sigma": sigma, "groups": len(groups), "seeds_per_group": len(next(iter(groups.values()))), "dof": dof}


def expected_file(spec: str, observed: dict[str, dict], spread: dict, environment: dict, command: str) -> dict:
    return {
        "format": FORMAT,
        "spec": spec,
        "command": command,
        "k": K,
        "spread": spread,
        "environment": environment,
        "runs": observed,
    }


def default_expected(cpu: str, update: bool) -> Path:
    """This CPU model's stored results; with none stored (and not `--update`), another model's: `compare` then
    leaves the exact values out. A model's own file wins, so a file stored here is what later checks here use."""
    own = REGRESSION_DIR / f"{cpu_slug(cpu)}.json"
    if update or own.exists():
        return own
    return min(REGRESSION_DIR.glob("*.json"), default=own)  # none at all: read_expected says how to create it


def stored_device(stored: dict) -> object:
    environment = stored.get("environment")
    return environment.get("device") if isinstance(environment, dict) else None


def read_expected(path: str | Path, keys: list[str]) -> dict:
    """The stored results at `path`, checked to be of this format and for exactly the runs `keys`."""
    path = Path(path)
    fix = f"create it with `{UPDATE}` (a few times the check's run time)"
    if not path.exists():
        raise ConfigError(f"no stored regression results at {str(path)!r}; {fix}")
    data = read_bytes(path, REGRESSION_JSON)
    try:
        stored = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ConfigError(f"stored regression results {str(path)!r} are not valid JSON ({e}); {fix}") from None
    found = stored.get("format") if isinstance(stored, dict) else None
    if found != FORMAT:
        raise ConfigError(
            f"stored regression results {str(path)!r} are of format {found!r}, this suite reads "
            f"{FORMAT!r}; regenerate them with `{UPDATE}`"
        )
    missing, extra = sorted(set(keys) - set(stored["runs"])), sorted(set(stored["runs"]) - set(keys))
    if missing or extra:
        what = f"no stored result for {missing[0]!r}" if missing else f"a stored run {extra[0]!r} the spec lacks"
        raise ConfigError(
            f"stored regression results {str(path)!r} are for other runs than the spec ({what}); "
            f"regenerate them with `{UPDATE}`"
        )
    return stored


@dataclass(frozen=True)
class Row:
    """One compared value: `ok` False is a regression."""

    run: str
    metric: str
    expected: object
    got: object
    tolerance: str
    ok: bool


def compare(stored: dict, observed: dict[str, dict], cpu: str) -> tuple[list[Row], list[str]]:
    """Rows of the comparison (a failed row is a regression) and notes (configs that changed, which alone pass; exact
    values left out because the stored results come from another CPU model than `cpu`)."""
    sigma, k = stored["spread"]["sigma"], stored["k"]
    rows, notes = [], []
    exact = stored_device(stored) == cpu
    if not exact:
        notes.append(
            f"{', '.join(EXACT)} not compared: the stored results come from {stored_device(stored)!r}, "
            f"this is {cpu!r}, and exact values hold only on one CPU model; `{UPDATE}` here stores "
            f"{cpu_slug(cpu)}.json"
        )
    for key, seen in observed.items():
        want = stored["runs"][key]
        for metric in EXACT if exact else ():
            rows.append(
                Row(key, metric, _short(want[metric]), _short(seen[metric]), "exact", want[metric] == seen[metric])
            )
        for metric in TOLERATED:
            band = k * sigma[metric] * math.sqrt(2)
            diff = seen[metric] - want[metric]
            rows.append(
                Row(key, metric, round(want[metric], 4), round(seen[metric], 4), f"±{band:.4g}", abs(diff) <= band)
            )
        if want["hash"] != seen["hash"]:
            changed = _changed(want["config"], seen["config"])
            notes.append(f"{key}: config changed ({want['hash']} -> {seen['hash']}): {', '.join(changed[:4])}")
    n = len(observed)
    for metric in TOLERATED:
        band = k * sigma[metric] * math.sqrt(2 / n)
        want = sum(stored["runs"][key][metric] for key in observed) / n
        got = sum(seen[metric] for seen in observed.values()) / n
        rows.append(
            Row(f"mean of {n} runs", metric, round(want, 4), round(got, 4), f"±{band:.4g}", abs(got - want) <= band)
        )
    return rows, notes


def _short(value: object) -> object:
    return "/".join(map(str, value)) if isinstance(value, list) else value


def _changed(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted paths where two configs differ, with both values: `recipe.kd_temperature: 4.0 -> 1.0`."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            c for key in sorted(set(old) | set(new)) for c in _changed(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [f"{prefix[:-1]}: {_short(old)} -> {_short(new)}"]

"""pytest-benchmark set-up for the hot-path suites: times in reference units, a stored baseline, a summary table.

Every benchmark's timings are divided by the median of a reference workload timed just before it in the same
process (see `test_hot_paths.reference_seconds`), so pytest-benchmark's own table, its saved JSON and its
`--benchmark-compare` all work on ratios, which survive a busy or a different machine far better than seconds.
The seconds are kept in each benchmark's `extra_info` and in the summary printed at the end.

    nox -s bench            # run, then compare medians with benchmarks/baselines/<cpu model>.json (fails beyond
                            # the tolerance)
    nox -s bench_update     # rewrite that file (on an idle machine; commit it)

A baseline that is missing, of another format, or lacking one of the collected benchmarks stops the run with a
message saying how to regenerate it: never a crash, never a silent pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Bump when the reference workload or what a benchmark measures changes: older baselines then stop comparing.
FORMAT = "tas-bench-benchmarks/1"
UPDATE = "nox -s bench_update"
_BASELINE = pytest.StashKey[set]()  # the baseline's benchmark names, when comparing
SUMMARY: list[dict] = []  # one row per benchmark, printed by pytest_terminal_summary


def _compare_path(config: pytest.Config) -> Path | None:
    value = config.getoption("benchmark_compare", None)
    return Path(value) if isinstance(value, str) and value.endswith(".json") else None


def _baseline_error(path: Path, problem: str) -> pytest.UsageError:
    return pytest.UsageError(
        f"benchmark baseline {path}: {problem}; regenerate it on an idle machine with `{UPDATE}` and commit it"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    path = _compare_path(config)
    if path is None:
        return
    if not path.is_file():
        raise _baseline_error(path, "no such file")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _baseline_error(path, f"not valid JSON ({e})") from None
    found = stored.get("tas_bench", {}).get("format") if isinstance(stored, dict) else None
    if found != FORMAT:
        raise _baseline_error(path, f"format {found!r}, this suite writes {FORMAT!r}")
    config.stash[_BASELINE] = {b["fullname"] for b in stored.get("benchmarks", [])}


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    stored = config.stash.get(_BASELINE, None)
    if stored is None:
        return
    missing = [
        item.nodeid
        for item in session.items
        if "benchmark" in getattr(item, "fixturenames", ()) and item.nodeid not in stored
    ]
    if missing:
        raise _baseline_error(_compare_path(config), f"has no entry for {missing[0]} ({len(missing)} missing)")


@pytest.fixture
def bench_summary() -> list[dict]:
    """Where a benchmark adds its row (name, median_seconds, reference_seconds, ratio) for the summary table."""
    return SUMMARY


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    output_json["tas_bench"] = {"format": FORMAT, "unit": "median time of the reference workload"}


def pytest_benchmark_scale_unit(config, unit, benchmarks, best, worst, sort):
    # Times are ratios to the reference workload; the table's header reads "time in reference-units".
    return ("reference-unit", 1.0) if unit == "seconds" else ("", 1.0)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not SUMMARY:
        return
    from tabulate import tabulate

    rows = [
        [s["name"], f"{s['median_seconds']:.4g}", f"{s['reference_seconds']:.4g}", f"{s['ratio']:.3f}"] for s in SUMMARY
    ]
    terminalreporter.write_sep("-", "medians in seconds and as a ratio to the reference workload")
    terminalreporter.write_line(tabulate(rows, headers=["benchmark", "median s", "reference s", "ratio"]))

"""`tas-bench regress`: the proxy regression check (see `tasbench/runner/regression.py` for what it compares and why).

    tas-bench regress                                   # run benchmarks/regression.yaml afresh; exit 1 on a regression
    tas-bench regress --update --spread-seeds 1,2,3     # rewrite this CPU model's benchmarks/regression/<cpu>.json
    tas-bench regress --out runs-regression             # keep the runs (a killed check resumes there)

The stored results are per CPU model (`tasbench/runner/regression.py` says why). They and the spec are the ones shipped
with tas-bench (found through the package, from any working directory); `--update` rewrites the repository's
file, so it needs a source checkout (or an explicit --expected).
The comparison table goes to stderr; stdout gets one JSON object with `passed` and the failed rows.
"""

from __future__ import annotations

import argparse
import sys

from tasbench.bounds import MAX_THREADS, MAX_WORKERS, int_flag, path_flag
from tasbench.errors import ConfigError
from tasbench.installation import source_tree

SPEC = "regression"  # the shipped benchmarks/regression.yaml


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("regress", help="rerun the proxy regression sweep and compare with the stored results")
    p.add_argument(
        "--spec", default=SPEC, help="the regression sweep: a YAML file or a shipped spec's name (default: regression)"
    )
    p.add_argument(
        "--expected",
        type=path_flag,
        help="the stored results (default: this CPU model's shipped benchmarks/regression/<cpu>.json)",
    )
    p.add_argument("--update", action="store_true", help="rewrite --expected from this run instead of comparing")
    p.add_argument(
        "--spread-seeds",
        default="1,2,3",
        help="--update only: extra seeds whose spread sets the tolerance (default: 1,2,3)",
    )
    p.add_argument(
        "--out", type=path_flag, help="results root to keep the runs in (default: a temporary directory, removed after)"
    )
    p.add_argument("--workers", type=int_flag(1, MAX_WORKERS), default=2, help="parallel runs (default: 2)")
    p.add_argument("--threads", type=int_flag(1, MAX_THREADS), default=1, help="torch threads per worker (default: 1)")
    p.add_argument("--no-progress", action="store_true", help="no line on stderr per finished run")
    p.set_defaults(command=cmd_regress)


def expected_path(args: argparse.Namespace) -> str:
    """--expected, or the shipped results; `--update` of the shipped results needs the repository they live in."""
    from tasbench.runner.regression import default_expected
    from tasbench.runner.store import cpu_name

    if args.expected is not None:
        return args.expected
    if args.update and source_tree() is None:
        raise ConfigError(
            "--update rewrites benchmarks/regression/<cpu>.json in the tas-bench repository, but this "
            "tas-bench is installed from a wheel, not run from a checkout; run it from a clone "
            "(pip install -e .) or give --expected FILE"
        )
    return str(default_expected(cpu_name(), args.update).resolve())


def cmd_regress(args: argparse.Namespace) -> dict:
    import tempfile
    from contextlib import nullcontext

    import torch
    from tabulate import tabulate

    from tasbench.atomic import write_json
    from tasbench.runner.executors import Executor, WorkerDied, execute
    from tasbench.runner.regression import UPDATE, compare, expected_file, observe, read_expected, run_key, seed_spread
    from tasbench.runner.spec import load_sweep
    from tasbench.runner.store import cpu_name, environment

    expected = expected_path(args)
    sweep = load_sweep(args.spec)
    keys = [run_key(cfg) for cfg in sweep.runs]
    stored = None if args.update else read_expected(expected, keys)  # bad input stops us before any work
    runs = sweep.runs
    if args.update:
        try:
            extra = [int(s) for s in args.spread_seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--spread-seeds must be comma-separated ints, got {args.spread_seeds!r}") from None
        seeds = sorted({cfg.seed for cfg in runs} | set(extra))
        runs = load_sweep(args.spec, [f"seeds={seeds}"]).runs

    def log(line: str) -> None:  # one line per finished run
        if not args.no_progress:
            print(line, file=sys.stderr, flush=True)

    fresh = tempfile.TemporaryDirectory(prefix="tas-bench-regress-") if args.out is None else nullcontext(args.out)
    with fresh as root:
        torch.set_num_threads(args.threads)  # runs executed in this process (--workers 1); workers set their own
        executor = Executor("local", args.workers, threads=args.threads)
        try:
            metrics = execute(runs, root, executor, latency_batches=(1,), log=log)
        except WorkerDied as e:
            print(f"tas-bench: {e}", file=sys.stderr)
            sys.exit(1)
        seen = [(cfg, observe(cfg, root, m)) for cfg, m in zip(runs, metrics)]
    observed = {run_key(cfg): obs for cfg, obs in seen if run_key(cfg) in keys}
    if args.update:
        command = f"{UPDATE} --spread-seeds {args.spread_seeds}"
        content = expected_file(args.spec, observed, seed_spread(seen), environment(torch.device("cpu")), command)
        write_json(expected, content)
        print(f"wrote {expected}: {len(observed)} runs, seed sigma {content['spread']['sigma']}", file=sys.stderr)
        return {"updated": expected, "runs": len(observed), "spread": content["spread"]}
    rows, notes = compare(stored, observed, cpu_name())
    table = [[r.run, r.metric, r.expected, r.got, r.tolerance, "ok" if r.ok else "REGRESSION"] for r in rows]
    print(tabulate(table, headers=["run", "metric", "stored", "now", "tolerance", ""]), file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    failed = [r for r in rows if not r.ok]
    verdict = f"{len(failed)} of {len(rows)} values regressed" if failed else f"all {len(rows)} values match"
    print(
        f"proxy regression: {verdict} (stored: {expected}; if a change is intended, rerun `{UPDATE}`)", file=sys.stderr
    )
    return {
        "passed": not failed,
        "compared": len(rows),
        "notes": notes,
        "failed": [{"run": r.run, "metric": r.metric, "stored": r.expected, "now": r.got} for r in failed],
    }

"""`tas-bench compare`: our run directories against runs logged to W&B (a project, or offline run directories).

    tas-bench compare --wandb-dir runs/wandb                      # the runs the sweeps logged (their JSON)
    tas-bench compare --project my-team/tas-bench --tolerance 0.3  # through wandb.Api()

Prints the side-by-side table (Markdown) on stderr and one JSON object with the rows and which of them differ.
"""

from __future__ import annotations

import argparse
import json
import sys

from tasbench.bounds import float_flag, int_flag, path_flag


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("compare", help="compare local runs with runs logged to W&B, row by row")
    p.add_argument("--runs", type=path_flag, default="runs", help="local results root (default: runs)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--wandb-dir",
        type=path_flag,
        help="a sweep's W&B directory (<root>/wandb), whose runs each hold what they logged (tas-bench-logged.json)",
    )
    source.add_argument("--project", help="a W&B project, entity/project, read through wandb.Api()")
    p.add_argument("--timeout", type=int_flag(1, 3600), default=20, help="seconds per W&B API request (default 20)")
    p.add_argument(
        "--tolerance", type=float_flag(0, 100), default=0.5, help="accuracy points a row may differ by (default 0.5)"
    )
    p.set_defaults(command=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> dict:
    from tabulate import tabulate

    from tasbench.report.compare import compare, logged_runs, project_rows, wandb_rows
    from tasbench.report.tables import KEYS, collect

    if args.wandb_dir:
        logged = logged_runs(args.wandb_dir)
        incomplete = sum(not run["complete"] for run in logged)
        if incomplete:  # still being written, or its writer was killed: what it holds so far is compared
            print(
                f"note: {incomplete} W&B runs were not finished when they last wrote what they logged", file=sys.stderr
            )
        theirs = wandb_rows(logged)
    else:
        theirs = project_rows(args.project, args.timeout)
    table = compare(collect(args.runs), theirs, args.tolerance)
    shown = table[[*KEYS, "top1_mean_local", "top1_mean_wandb", "delta_top1_mean", "delta_macs", "differs", "found_in"]]
    print(tabulate(shown, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"), file=sys.stderr)
    rows = json.loads(table.to_json(orient="records"))  # NaN (a row on one side only) becomes null
    return {"tolerance": args.tolerance, "rows": rows, "differ": int(table["differs"].sum()), "compared": len(rows)}

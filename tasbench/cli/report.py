"""`tas-bench report`: gather finished runs into paper-layout tables (Markdown, LaTeX) and accuracy-vs-FLOPs plots.

tas-bench report                                   # runs/ -> runs/report/<dataset>.md, .tex, <dataset>-<net>.png
tas-bench report --runs /shared/runs --runs runs --out results --paper none
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tasbench.bounds import path_flag


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("report", help="tables and plots from finished runs, beside the paper's numbers")
    p.add_argument(
        "--runs",
        action="append",
        type=path_flag,
        help="a results root the sweeps wrote; repeat it to report several together (default: runs)",
    )
    p.add_argument("--out", type=path_flag, help="where tables and plots go (default: <first --runs>/report)")
    p.add_argument(
        "--paper",
        type=path_flag,
        help="the paper's numbers, a CSV with the columns of the one tas-bench ships "
        "(default: tasbench/paper/paper-results.csv), or 'none' for no paper rows",
    )
    p.set_defaults(command=cmd_report)


def cmd_report(args: argparse.Namespace) -> dict:
    # pandas/matplotlib: imported only when reporting
    from tasbench.atomic import check_output_dir
    from tasbench.report.paper import PACKAGED, read_paper
    from tasbench.report.tables import collect, write_report

    roots = args.runs or ["runs"]
    paper = read_paper(None if args.paper == "none" else args.paper or PACKAGED)
    runs = collect(roots)
    out = args.out or Path(roots[0]) / "report"
    check_output_dir(out, "--out")
    return {"runs": len(runs), "skipped": len(runs.attrs["skipped"]), "written": write_report(runs, paper, out)}

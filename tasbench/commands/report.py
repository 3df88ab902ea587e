"""`tas-bench report`: gather finished runs into paper-layout tables (Markdown, LaTeX) and accuracy-vs-FLOPs plots.

    tas-bench report                                   # runs/ -> results/<dataset>.md, .tex, <dataset>-<net>.png
    tas-bench report --runs /shared/runs --out results --paper results/paper/paper-results.csv
"""

from __future__ import annotations

import argparse

DEFAULT_PAPER = "results/paper/paper-results.csv"


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("report", help="tables and plots from finished runs, beside the paper's numbers")
    p.add_argument("--runs", default="runs", help="results root the sweeps wrote (default: runs)")
    p.add_argument("--out", default="results", help="where tables and plots go (default: results)")
    p.add_argument("--paper", default=DEFAULT_PAPER, help=f"the paper's numbers (default: {DEFAULT_PAPER})")
    p.set_defaults(command=cmd_report)


def cmd_report(args: argparse.Namespace) -> dict:
    from tasbench.report import collect, read_paper, write_report  # pandas/matplotlib: only when reporting

    paper = read_paper(args.paper)
    runs = collect(args.runs)
    return {"runs": len(runs), "written": write_report(runs, paper, args.out)}

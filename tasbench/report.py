"""Tables and plots from run directories, in the layout of the TAS paper's Tables 3 and 4, beside the paper's numbers.

    >>> runs = collect("runs")                      # one row per finished run (metrics.json + params.json)
    >>> table = summary(runs)                       # mean and std over seeds per (dataset, network, method, ratio)
    >>> write_report(runs, read_paper("results/paper/paper-results.csv"), "results")
    ['results/proxy.md', 'results/proxy.tex', 'results/proxy-resnet20.png']

Each table says what produced it (device, torch, seeds). The paper's rows keep their `source` column ("seed" rows
were checked against the paper's summary, "recalled" ones were not); nothing in a table is typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from tasbench.atomic import atomic_write, write_text
from tasbench.errors import ConfigError
from tasbench.runs import path_component

KEYS = ["dataset", "network", "label", "recipe", "ratio"]  # one table row per key; seeds are averaged
PAPER_COLUMNS = ["dataset", "network", "method", "pruned_acc", "acc_drop", "flops", "flops_pruned_pct", "source"]


def collect(root: str | Path) -> pd.DataFrame:
    """One row per finished pruning run under `root` (teachers and unfinished runs are left out)."""
    rows = []
    for path in sorted(Path(root).glob("*/*/metrics.json")):
        metrics = json.loads(path.read_text())
        if "teacher_hash" in metrics:  # not a teacher's or a plain `tas-bench train` run
            rows.append(run_row(metrics))
    if not rows:
        raise ConfigError(f"no finished runs under {str(root)!r}; run `tas-bench sweep SPEC --out {root}` first")
    return pd.DataFrame(rows)


def run_row(m: dict) -> dict:
    """A table row from a run's metrics.json, or from the flat W&B summary that `wandb_log.summary_of` logs."""
    env, timing = m.get("environment", m), m.get("timing", m)
    return {
        "dataset": m["dataset"], "network": m["network"], "label": m["label"], "method": m["method"],
        "recipe": m["recipe"], "ratio": m["ratio"], "seed": m["seed"], "hash": m["hash"],
        "unpruned_top1": m["unpruned_top1"], "top1": m["top1"], "top5": m["top5"], "acc_drop": m["acc_drop"],
        "macs": m["macs"], "unpruned_macs": m["unpruned_macs"], "params": m["params"],
        "flop_reduction_pct": m["flop_reduction_pct"], "device": env["device"], "torch": env["torch"],
        "git_commit": env["git_commit"], "git_dirty": bool(env.get("git_dirty")),
        "latency_ms_batch1": timing.get("latency_ms_batch1"),
    }  # fmt: skip


def read_paper(path: str | Path) -> pd.DataFrame:
    """The paper's numbers, as shipped in results/paper/ (built from the reference CSV; see its README)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"paper results {str(path)!r} do not exist (the repository ships results/paper/)")
    paper = pd.read_csv(path)
    missing = [c for c in PAPER_COLUMNS if c not in paper.columns]
    if missing:
        raise ConfigError(f"paper results {str(path)!r} lack column {missing[0]!r}; expected {PAPER_COLUMNS}")
    return paper


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (over seeds) of accuracy, drop and FLOPs per (dataset, network, method label, recipe, ratio)."""
    grouped = runs.groupby(KEYS, sort=False)
    out = grouped.agg(
        seeds=("seed", "nunique"),
        unpruned_mean=("unpruned_top1", "mean"), unpruned_std=("unpruned_top1", "std"),
        top1_mean=("top1", "mean"), top1_std=("top1", "std"),
        drop_mean=("acc_drop", "mean"), drop_std=("acc_drop", "std"),
        macs=("macs", "mean"), flop_reduction_pct=("flop_reduction_pct", "mean"),
    ).reset_index()  # fmt: skip
    return out.fillna({c: 0.0 for c in ("unpruned_std", "top1_std", "drop_std")})  # one seed: no spread


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def table_rows(ours: pd.DataFrame, paper: pd.DataFrame) -> list[dict]:
    """Rows of one (dataset, network) table: ours (mean ± std), then the paper's, each with its source."""
    rows = []
    for r in ours.sort_values(["label", "recipe", "macs"]).itertuples():
        rows.append({
            "source": "ours", "method": r.label, "recipe": r.recipe, "target ratio": f"{r.ratio:g}",
            "unpruned acc": _pm(r.unpruned_mean, r.unpruned_std), "pruned acc": _pm(r.top1_mean, r.top1_std),
            "acc drop": _pm(r.drop_mean, r.drop_std), "FLOPs": f"{r.macs:.2e}",
            "FLOPs pruned %": f"{r.flop_reduction_pct:.1f}", "seeds": r.seeds,
        })  # fmt: skip
    for r in paper.itertuples():
        unpruned = r.pruned_acc + r.acc_drop if pd.notna(r.acc_drop) else float("nan")
        rows.append({
            "source": f"paper ({r.source})", "method": r.method, "recipe": "", "target ratio": "",
            "unpruned acc": _num(unpruned), "pruned acc": _num(r.pruned_acc), "acc drop": _num(r.acc_drop),
            "FLOPs": f"{r.flops:.2e}", "FLOPs pruned %": _num(r.flops_pruned_pct, 1), "seeds": "",
        })  # fmt: skip
    return rows


def _num(value: float, digits: int = 2) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def provenance(runs: pd.DataFrame) -> str:
    """What produced a table: hardware, torch, commits and seeds (airbench's header habit)."""
    devices = ", ".join(sorted(set(runs["device"])))
    torches = ", ".join(sorted(set(runs["torch"])))
    # "+dirty": the run's working tree had uncommitted changes, so the commit alone does not pin its code.
    pairs = zip(runs["git_commit"], runs["git_dirty"])
    commits = ", ".join(sorted({f"{c[:10]}{'+dirty' if d else ''}" for c, d in pairs if c}))
    seeds = sorted(set(runs["seed"]))
    return (f"{len(runs)} runs on {devices}; torch {torches}; commit {commits}; seeds {seeds} "
            f"(mean ± std over seeds; std is the sample std, 0 for one seed)")  # fmt: skip


def render(runs: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> tuple[str, str]:
    """(Markdown, LaTeX) of every network's table for `dataset`."""
    mine = runs[runs["dataset"] == dataset]
    stats = summary(mine)
    md = [f"# {dataset}: pruned accuracy vs FLOPs", "", provenance(mine), ""]
    tex = [f"% {dataset}: {provenance(mine)}"]
    for network in stats["network"].unique():
        rows = table_rows(stats[stats["network"] == network],
                          paper[(paper["dataset"] == dataset) & (paper["network"] == network)])  # fmt: skip
        # disable_numparse: the cells are already formatted ("6.20e+07"); tabulate would re-format them.
        md += [f"## {network}", "", tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True), ""]
        latex = tabulate(rows, headers="keys", tablefmt="latex_booktabs", disable_numparse=True)
        tex += [f"% {network}", latex.replace("±", r"$\pm$"), ""]
    return "\n".join(md), "\n".join(tex)


def plot(runs: pd.DataFrame, paper: pd.DataFrame, dataset: str, network: str, path: str | Path) -> None:
    """Accuracy vs FLOPs: one line per method (error bars: std over seeds), the Pareto front of the means marked."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    stats = summary(runs[(runs["dataset"] == dataset) & (runs["network"] == network)])
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for (label, recipe), group in stats.groupby(["label", "recipe"], sort=True):
        group = group.sort_values("macs")
        ax.errorbar(group["macs"] / 1e6, group["top1_mean"], yerr=group["top1_std"], marker="o", capsize=3,
                    label=f"{label} ({recipe})")  # fmt: skip
    ax.axhline(stats["unpruned_mean"].mean(), color="gray", linewidth=0.8, linestyle=":", label="unpruned (mean)")
    front = pareto_front(stats)
    ax.plot(front["macs"] / 1e6, front["top1_mean"], color="black", linestyle="--", linewidth=1, drawstyle="steps-post",
            label="Pareto front")  # fmt: skip
    ax.scatter(front["macs"] / 1e6, front["top1_mean"], s=90, facecolors="none", edgecolors="black", zorder=3)
    theirs = paper[(paper["dataset"] == dataset) & (paper["network"] == network)]
    for r in theirs.itertuples():
        ax.scatter(r.flops / 1e6, r.pruned_acc, marker="x", color="black", zorder=3)
        ax.annotate(f"paper: {r.method}", (r.flops / 1e6, r.pruned_acc), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("MFLOPs (multiply-accumulates)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{dataset} {network}: {int(stats['seeds'].max())} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    atomic_write(path, tmp.read_bytes())
    tmp.unlink()


def pareto_front(stats: pd.DataFrame) -> pd.DataFrame:
    """The rows no other row beats: none has both fewer (or equal) FLOPs and higher mean accuracy."""
    ordered = stats.sort_values(["macs", "top1_mean"], ascending=[True, False])
    keep, best = [], float("-inf")
    for i, row in ordered.iterrows():
        if row["top1_mean"] > best:
            keep.append(i)
            best = row["top1_mean"]
    return ordered.loc[keep]


def write_report(runs: pd.DataFrame, paper: pd.DataFrame, out: str | Path) -> list[str]:
    """Write `<dataset>.md`, `<dataset>.tex` and `<dataset>-<network>.png` under `out`; returns the paths."""
    out = Path(out)
    written = []
    for dataset in sorted(runs["dataset"].unique()):
        md, tex = render(runs, paper, dataset)
        path_component(dataset, "dataset")  # names read from metrics.json files choose output paths: keep them plain
        for path, text in ((out / f"{dataset}.md", md), (out / f"{dataset}.tex", tex)):
            write_text(path, text + "\n")
            written.append(str(path))
        for network in sorted(runs[runs["dataset"] == dataset]["network"].unique()):
            path = out / f"{dataset}-{path_component(network, 'network')}.png"
            plot(runs, paper, dataset, network, path)
            written.append(str(path))
    return written

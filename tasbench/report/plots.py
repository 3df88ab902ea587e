"""Accuracy-vs-FLOPs plots of a report: our configurations (mean ± std over seeds) beside the paper's points.

Every method has one colour, the same in every plot of a report, and every label its marker; the paper's points
take the colour of the same method (our "TAS" and the paper's "TAS"; our "L1 (...)" and the paper's "PFEC (L1)")
with a hollow marker. Points sit at the FLOPs their nets reached (mean over seeds); a configuration with a net
outside its method's FLOP band is ringed in red; faint vertical lines mark the FLOP targets::

    >>> styles = method_styles(["TAS", "L1 (B, paper)", "L1 (FLOP-matched)"], ["TAS", "PFEC (L1)", "SFP"])
    >>> styles.ours["L1 (FLOP-matched)"], styles.paper["PFEC (L1)"]
    (Look(colour='tab:green', marker='<'), Look(colour='tab:green', marker='^'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasbench.atomic import atomic_write
from tasbench.report.configurations import differences, teacher_configuration

# (colour, marker) of the methods a report knows: ours and those the TAS paper compares with.
KNOWN = {
    "TAS": ("tab:blue", "o"),
    "Uniform": ("tab:orange", "s"),
    "L1": ("tab:green", "^"),
    "FPGM": ("tab:red", "D"),
    "SFP": ("tab:purple", "v"),
    "LCCL": ("tab:brown", "P"),
    "Taylor": ("tab:pink", "X"),
}
SPARE_COLOURS = ("tab:cyan", "tab:olive", "tab:gray", "#393b79", "#8c6d31", "#7b4173", "#637939", "#843c39")
SPARE_MARKERS = ("<", ">", "h", "p", "*", "d", "8", "H")
ALIASES = {"PFEC": "L1"}  # the paper's name for L1-norm filter pruning (Li et al. 2017, "Pruning Filters ...")
LINESTYLES = ("-", "--", ":", "-.")  # the configurations (recipe, setting) of one label, and the teachers


@dataclass(frozen=True)
class Look:
    colour: str
    marker: str


@dataclass(frozen=True)
class Styles:
    ours: dict[str, Look]  # by our label
    paper: dict[str, Look]  # by the paper's method name


def family(name: str) -> str:
    """The method a label names: its text before the first parenthesis, with the paper's aliases; so
    'L1 (B, paper)', 'L1 (FLOP-matched)' and the paper's 'PFEC (L1)' are all 'L1'."""
    head = name.split("(")[0].strip() or name
    return ALIASES.get(head, head)


def method_styles(labels: list[str], paper_methods: list[str]) -> Styles:
    """One colour per method and one marker per label, fixed for a whole report. A method's first label (sorted)
    and the paper's points of that method take its own marker; its other labels take spare markers."""
    families = sorted({family(n) for n in [*labels, *paper_methods]})
    unknown = [f for f in families if f not in KNOWN]
    colours = {f: KNOWN[f][0] if f in KNOWN else SPARE_COLOURS[unknown.index(f) % len(SPARE_COLOURS)] for f in families}
    base = {f: KNOWN[f][1] if f in KNOWN else SPARE_MARKERS[unknown.index(f) % len(SPARE_MARKERS)] for f in families}
    ours = {}
    for f in families:
        markers = [base[f], *(m for m in SPARE_MARKERS if m != base[f])]
        for i, label in enumerate(sorted({n for n in labels if family(n) == f})):
            ours[label] = Look(colours[f], markers[i % len(markers)])
    return Styles(ours, {m: Look(colours[family(m)], base[family(m)]) for m in paper_methods})


def count_text(counts: list[int], noun: str) -> str:
    """'1 seed', '3 seeds', or '1-3 seeds' when the counts differ."""
    low, high = min(counts), max(counts)
    return f"{low}-{high} {noun}s" if low != high else f"{low} {noun}{'' if low == 1 else 's'}"


def plot(
    runs: pd.DataFrame, stats: pd.DataFrame, paper: pd.DataFrame, styles: Styles, title: str, path: str | Path
) -> list[str]:
    """Top-1 vs MFLOPs of one (dataset, network) from `runs`, their `report.summary` (with settings) and the paper's
    rows, written to `path`; returns the legend's entries."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    targeted = stats[~(stats["band_recorded"] & stats["band_low"].isna())]  # fixed shapes have no FLOP target
    ratios = sorted(set(targeted["ratio"]))
    for ratio in ratios:
        ax.axvline(ratio * targeted["unpruned_macs"].mean() / 1e6, color="0.8", linewidth=1.5, zorder=0)
    handles = [Line2D([], [], color="0.8", linewidth=1.5, label=f"FLOP targets {', '.join(f'{r:g}' for r in ratios)}")]
    # one unpruned line per teacher configuration (the mean of its seeds' teachers), named by how they differ
    groups = [group for _, group in runs.drop_duplicates("teacher_hash").groupby("teacher_config")]
    names = differences([teacher_configuration(group["fields"].iloc[0]) for group in groups])
    teachers = sorted(zip(names, groups), key=lambda pair: pair[0])
    for (name, group), style in zip(teachers, LINESTYLES * len(teachers)):
        label = f"unpruned{f' ({name})' if name else ''}, {count_text([len(group)], 'teacher')}"
        handles.append(
            ax.axhline(group["unpruned_top1"].mean(), color="0.45", linewidth=0.9, linestyle=style, label=label)
        )
    for label, rows in stats.groupby("label", sort=True):
        look = styles.ours[label]
        series = rows.groupby(["recipe", "setting"], sort=True)
        for ((recipe, setting), points), style in zip(series, LINESTYLES * len(series)):
            points = points.sort_values("macs")
            handles.append(
                ax.errorbar(
                    points["macs"] / 1e6,
                    points["top1_mean"],
                    xerr=points["macs_std"] / 1e6,
                    yerr=points["top1_std"],
                    color=look.colour,
                    marker=look.marker,
                    linestyle=style,
                    capsize=3,
                    markersize=6,
                    label=f"{label} ({recipe}){f', {setting}' if setting else ''}",
                )
            )
    off = stats[stats["off_band"] > 0]
    if len(off):
        handles.append(
            ax.scatter(
                off["macs"] / 1e6,
                off["top1_mean"],
                s=160,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
                zorder=4,
                label="a net outside its FLOP band (†)",
            )
        )
    front = pareto_front(stats)
    handles += ax.plot(
        front["macs"] / 1e6,
        front["top1_mean"],
        color="black",
        linestyle="--",
        linewidth=0.8,
        drawstyle="steps-post",
        label="Pareto front (means)",
    )
    for r in paper.itertuples():
        look = styles.paper[r.method]
        if pd.notna(r.pruned_acc):
            y, transform, label = r.pruned_acc, ax.transData, f"paper: {r.method}"
        else:  # no accuracy reported: the FLOPs alone, on the bottom edge
            y, transform, label = 0.03, ax.get_xaxis_transform(), f"paper: {r.method} (FLOPs only)"
        handles += ax.plot(
            [r.flops / 1e6],
            [y],
            transform=transform,
            linestyle="none",
            marker=look.marker,
            markersize=8,
            markerfacecolor="none",
            markeredgecolor=look.colour,
            markeredgewidth=1.5,
            label=label,
        )
    ax.set_xlabel("MFLOPs (multiply-accumulates), as reached")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{title}: mean ± std over {count_text(list(stats['seeds']), 'seed')}")
    ax.grid(axis="y", alpha=0.3)  # no vertical grid: the vertical lines are the FLOP targets
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, tmp.read_bytes())
    tmp.unlink()
    return [h.get_label() for h in handles]


def pareto_front(stats: pd.DataFrame) -> pd.DataFrame:
    """The rows no other row beats: none has both fewer (or equal) FLOPs and higher mean accuracy."""
    ordered = stats.sort_values(["macs", "top1_mean"], ascending=[True, False])
    keep, best = [], float("-inf")
    for i, row in ordered.iterrows():
        if row["top1_mean"] > best:
            keep.append(i)
            best = row["top1_mean"]
    return ordered.loc[keep]

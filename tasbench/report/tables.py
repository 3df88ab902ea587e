"""Tables from run directories, in the layout of the TAS paper's Tables 3 and 4, beside the paper's numbers.

    >>> runs = collect(["runs"])                    # one row per finished run (metrics.json + params.json)
    >>> table = summary(runs)                       # mean and std over the seeds of each configuration
    >>> write_report(runs, read_paper(PACKAGED), "runs/report")           # from tasbench.report.paper
    ['runs/report/proxy.md', 'runs/report/proxy.tex', 'runs/report/proxy-resnet20.png']

A table row is one configuration (configurations.py): runs that differ in anything but the seed are never averaged
together, and rows of one method that differ say in what (a `setting` column: `recipe.epochs=2`). Each row shows
the FLOP ratio its nets reached beside the target, and marks (†) a row with a net outside its method's FLOP band,
(‡) one whose runs come from more than one code version and (§) one with a diverged run (a non-finite loss);
footnotes under the table say which and why. The paper's rows keep their `source` and `note` (footnotes [1],
[2]...); nothing in a table is typed by hand.

A damaged run (its metrics.json or params.json unreadable, run_files.py) or a foreign metrics.json (not a
tas-bench run's) is skipped with a warning that names the file, and each report's header says how many were
skipped, so that a table never drops runs silently; with nothing else left, that is the error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from tasbench.atomic import write_text
from tasbench.errors import ConfigError, warn
from tasbench.report.configurations import configuration, configuration_id, differences, teacher_configuration
from tasbench.report.plots import count_text, method_styles, plot
from tasbench.runner.run_files import PARAMS, PARAMS_FILE, RUN_METRICS, DamagedRunFile, read_run_file, validate
from tasbench.runner.store import path_component

KEYS = ["dataset", "network", "label", "recipe", "ratio", "config"]  # one table row per key; seeds are averaged
OFF_BAND, MIXED_CODE, DIVERGED = "†", "‡", "§"
LATEX = {"±": r"$\pm$", OFF_BAND: r"\dag{}", MIXED_CODE: r"\ddag{}", DIVERGED: r"\S{}"}


def collect(roots: str | Path | list[str | Path]) -> pd.DataFrame:
    """One row per finished pruning run under the results roots (teachers and unfinished runs are left out).

    A run found under two roots (the same method and config hash) is refused: averaging it twice would count one
    seed as two. A damaged or foreign file is skipped with a warning; `runs.attrs["skipped"]` holds those lines."""
    roots = [Path(r) for r in dict.fromkeys(str(r) for r in ([roots] if isinstance(roots, (str, Path)) else roots))]
    rows, found, skipped = [], {}, []
    for root in roots:
        if not root.is_dir():
            raise ConfigError(
                f"results root {str(root)!r} "
                + ("is a file, not a directory" if root.exists() else "does not exist")
                + "; give the --out of `tas-bench sweep`"
            )
        for path in sorted(root.glob("*/*/metrics.json")):
            try:
                metrics = read_run_file(path)
                if "teacher_hash" not in metrics:  # a teacher's or a plain `tas-bench train` run
                    continue
                run = f"{path.parent.parent.name}/{path.parent.name}"
                if run in found:
                    raise ConfigError(
                        f"run {run} is under both {str(found[run])!r} and {str(root)!r}; give each run once"
                    )
                found[run] = root
                rows.append(
                    _row(path, validate(path, metrics, RUN_METRICS), read_run_file(path.with_name(PARAMS_FILE), PARAMS))
                )
            except DamagedRunFile as e:
                skipped.append(f"{e}; skipped" + ("" if e.foreign else " (its sweep recomputes it, keeping it aside)"))
    where = ", ".join(repr(str(r)) for r in roots)
    if not rows and skipped:
        more = f" (and {count_text([len(skipped) - 1], 'more file')})" if len(skipped) > 1 else ""
        raise ConfigError(f"no readable finished runs under {where}: {skipped[0]}{more}")
    if not rows:
        raise ConfigError(f"no finished runs under {where}; run `tas-bench sweep SPEC --out {roots[0]}` first")
    for line in skipped:
        warn(line)
    runs = pd.DataFrame(rows)
    runs.attrs["skipped"] = skipped
    return runs


def _row(path: Path, metrics: dict, params: dict) -> dict:
    """`run_row`, with a value that cannot be one (a config that is not a run's, no unpruned MACs) a foreign file."""
    try:
        return run_row(metrics, params["config"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise DamagedRunFile(path, f"does not hold a tas-bench run ({type(e).__name__}: {e})", foreign=True) from None


def run_row(m: dict, config: dict) -> dict:
    """A table row from a run's metrics.json and the hashed config of its params.json (or the flat W&B summary
    that `wandb_log.summary_of` logs, and the config logged beside it)."""
    env, timing, code = m.get("environment", m), m.get("timing", m), m.get("code") or {}
    fields = configuration(config)
    band = m.get("target_band")
    return {
        "dataset": m["dataset"],
        "network": m["network"],
        "label": m["label"],
        "method": m["method"],
        "recipe": m["recipe"],
        "ratio": m["ratio"],
        "config": configuration_id(fields),
        "seed": m["seed"],
        "hash": m["hash"],
        "fields": fields,
        "teacher_config": configuration_id(teacher_configuration(fields)),
        "teacher_hash": m["teacher_hash"],
        "unpruned_top1": m["unpruned_top1"],
        "top1": m["top1"],
        "top5": m["top5"],
        "acc_drop": m["acc_drop"],
        "macs": m["macs"],
        "unpruned_macs": m["unpruned_macs"],
        "flop_ratio": m["macs"] / m["unpruned_macs"],
        "params": m["params"],
        "flop_reduction_pct": m["flop_reduction_pct"],
        # no `target_band` key: written before runs recorded their band; None: a fixed shape with no FLOP target
        "band_recorded": "target_band" in m,
        "band_low": band[0] if band else None,
        "band_high": band[1] if band else None,
        "in_band": m.get("in_band"),
        "source_hash": code.get("source_hash"),
        "code_version": code.get("version"),
        "device": env["device"],
        "torch": env["torch"],
        "git_commit": env["git_commit"],
        "git_dirty": bool(env.get("git_dirty")),
        "latency_ms_batch1": timing.get("latency_ms_batch1"),
        "diverged": bool(m.get("diverged")),
    }


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (over seeds) of accuracy, drop and FLOPs per configuration, with its band and code checks."""
    out = (
        runs.groupby(KEYS, sort=False)
        .agg(
            seeds=("seed", "nunique"),
            runs=("seed", "size"),
            unpruned_mean=("unpruned_top1", "mean"),
            unpruned_std=("unpruned_top1", "std"),
            top1_mean=("top1", "mean"),
            top1_std=("top1", "std"),
            drop_mean=("acc_drop", "mean"),
            drop_std=("acc_drop", "std"),
            macs=("macs", "mean"),
            macs_std=("macs", "std"),
            unpruned_macs=("unpruned_macs", "mean"),
            flop_ratio=("flop_ratio", "mean"),
            flop_reduction_pct=("flop_reduction_pct", "mean"),
            off_band=("in_band", lambda s: int(s.isin([False]).sum())),
            band_recorded=("band_recorded", "all"),
            band_low=("band_low", "first"),
            band_high=("band_high", "first"),
            codes=("source_hash", _code_versions),
            diverged=("diverged", "sum"),
            fields=("fields", "first"),
            teacher_config=("teacher_config", "first"),
        )
        .reset_index()
    )
    return out.fillna({c: 0.0 for c in ("unpruned_std", "top1_std", "drop_std", "macs_std")})  # one seed: no spread


def _code_versions(hashes: pd.Series) -> tuple[str | None, ...]:
    """The distinct source hashes of a row's runs, None (not recorded) last."""
    return tuple(sorted({None if pd.isna(h) else h for h in hashes}, key=lambda h: (h is None, h or "")))


def with_settings(stats: pd.DataFrame) -> pd.DataFrame:
    """`stats` with a `setting` column: per (dataset, network, label), the fields in which its rows differ."""
    stats = stats.copy()
    stats["setting"] = ""
    for _, rows in stats.groupby(["dataset", "network", "label"], sort=False):
        stats.loc[rows.index, "setting"] = differences(list(rows["fields"]))
    return stats


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f} ± {std:.2f}"


def _num(value: float, digits: int = 2) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def _row_name(r) -> str:
    return f"{r.label} ({r.recipe}) at {r.ratio:g}" + (f", {r.setting}" if r.setting else "")


def table(ours: pd.DataFrame, paper: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Rows of one (dataset, network) table, ours (mean ± std) then the paper's, and the footnotes under it."""
    rows, notes, unrecorded = [], [], []
    show_setting = bool(ours["setting"].any())
    for r in ours.sort_values(["label", "setting", "recipe", "macs"]).itertuples():
        fixed = r.band_recorded and pd.isna(r.band_low)  # the method's fixed shape: no FLOP target, no band
        achieved = f"{r.flop_ratio:.3f}"
        if r.off_band:
            achieved += f" {OFF_BAND}"
            notes.append(
                f"{OFF_BAND} {_row_name(r)}: {r.off_band} of {r.runs} runs outside the method's FLOP band "
                f"[{r.band_low:.3f}, {r.band_high:.3f}] (pruned / unpruned MACs)"
            )
        if not r.band_recorded:
            unrecorded.append(_row_name(r))
        seeds = str(r.seeds)
        if len(r.codes) > 1:
            seeds += f" {MIXED_CODE}"
            codes = ", ".join(c or "not recorded" for c in r.codes)
            notes.append(f"{MIXED_CODE} {_row_name(r)}: runs from {len(r.codes)} code versions (source {codes})")
        pruned = _pm(r.top1_mean, r.top1_std)
        if r.diverged:
            pruned += f" {DIVERGED}"
            notes.append(
                f"{DIVERGED} {_row_name(r)}: {r.diverged} of {r.runs} runs diverged (a non-finite loss: "
                f"their accuracy is meaningless; a lower learning rate may help)"
            )
        rows.append(
            {
                "source": "ours",
                "method": r.label,
                **({"setting": r.setting} if show_setting else {}),
                "recipe": r.recipe,
                "target": "fixed shape" if fixed else f"{r.ratio:g}",
                "achieved": achieved,
                "unpruned acc": _pm(r.unpruned_mean, r.unpruned_std),
                "pruned acc": pruned,
                "acc drop": _pm(r.drop_mean, r.drop_std),
                "FLOPs": f"{r.macs:.2e}",
                "FLOPs pruned %": f"{r.flop_reduction_pct:.1f}",
                "seeds": seeds,
            }
        )
    if unrecorded:
        notes.append(f"FLOP band not recorded (runs from before tas-bench recorded it): {'; '.join(unrecorded)}")
    numbered = 0
    for r in paper.itertuples():
        source = f"paper ({r.source})"
        if r.note:
            numbered += 1
            source += f" [{numbered}]"
            notes.append(f"[{numbered}] {r.method}, {r.source}: {r.note}")
        unpruned = r.pruned_acc + r.acc_drop  # NaN where either is unknown
        rows.append(
            {
                "source": source,
                "method": r.method,
                **({"setting": ""} if show_setting else {}),
                "recipe": "",
                "target": "",
                "achieved": _num(1 - r.flops_pruned_pct / 100, 3),
                "unpruned acc": _num(unpruned),
                "pruned acc": _num(r.pruned_acc),
                "acc drop": _num(r.acc_drop),
                "FLOPs": f"{r.flops:.2e}",
                "FLOPs pruned %": _num(r.flops_pruned_pct, 1),
                "seeds": "",
            }
        )
    return rows, notes


def provenance(runs: pd.DataFrame) -> str:
    """What produced a table: hardware, torch, commits, code versions and seeds (airbench's header habit)."""
    devices = ", ".join(sorted(set(runs["device"])))
    torches = ", ".join(sorted(set(runs["torch"])))
    # "+dirty": the run's working tree had uncommitted changes, so the commit alone does not pin its code.
    pairs = zip(runs["git_commit"], runs["git_dirty"])
    commits = ", ".join(sorted({f"{c[:10]}{'+dirty' if d else ''}" for c, d in pairs if c}))
    recorded = runs[runs["source_hash"].notna()]
    codes = sorted({f"{h} ({v})" if v else h for h, v in zip(recorded["source_hash"], recorded["code_version"])})
    if len(recorded) < len(runs):
        codes.append(f"not recorded for {count_text([len(runs) - len(recorded)], 'run')}" if codes else "not recorded")
    seeds = sorted(set(runs["seed"]))
    return (
        f"{len(runs)} runs on {devices}; torch {torches}; commit {commits}; code {', '.join(codes)}; "
        f"seeds {seeds} (mean ± std over seeds; std is the sample std, 0 for one seed)"
    )


def latex_text(text: str) -> str:
    """`text` as LaTeX body text: its special characters escaped, the table's marks as LaTeX symbols."""
    out = "".join(
        "\\" + c if c in "&%$#_{}" else {"~": r"\~{}", "^": r"\^{}", "\\": r"\textbackslash{}"}.get(c, c) for c in text
    )
    for char, latex in LATEX.items():
        out = out.replace(char, latex)
    return out


def render(runs: pd.DataFrame, paper: pd.DataFrame, dataset: str, skipped: int = 0) -> tuple[str, str]:
    """(Markdown, LaTeX) of every network's table for `dataset`, each with its footnotes; `skipped`: how many
    result files `collect` skipped (damaged or foreign: which dataset they held is unknown, so every report says)."""
    mine = runs[runs["dataset"] == dataset]
    stats = with_settings(summary(mine))
    header = provenance(mine)
    if skipped:
        header += (
            f"; {count_text([skipped], 'result file')} skipped, damaged or not a tas-bench run's (`tas-bench "
            f"report` names each in a warning)"
        )
    md = [
        f"# {dataset}: pruned accuracy vs FLOPs",
        "",
        header,
        "",
        "target and achieved: FLOP ratio (pruned / unpruned MACs); achieved is the mean over seeds (for the "
        "paper's rows: 1 - its FLOPs pruned %).",
        "",
    ]
    tex = [f"% {dataset}: {header}"]
    for network in stats["network"].unique():
        rows, notes = table(
            stats[stats["network"] == network], paper[(paper["dataset"] == dataset) & (paper["network"] == network)]
        )
        # disable_numparse: the cells are already formatted ("6.20e+07"); tabulate would re-format them.
        md += [f"## {network}", "", tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True), ""]
        md += [f"- {n}" for n in notes] + ([""] if notes else [])
        latex = tabulate(rows, headers="keys", tablefmt="latex_booktabs", disable_numparse=True)
        for char, symbol in LATEX.items():
            latex = latex.replace(char, symbol)
        tex += [f"% {network}", latex]
        if notes:
            tex += [r"\begin{flushleft}\footnotesize", *(latex_text(n) + r" \\" for n in notes), r"\end{flushleft}"]
        tex.append("")
    return "\n".join(md), "\n".join(tex)


def write_report(runs: pd.DataFrame, paper: pd.DataFrame, out: str | Path) -> list[str]:
    """Write `<dataset>.md`, `<dataset>.tex` and `<dataset>-<network>.png` under `out`; returns the paths."""
    out = Path(out)
    styles = method_styles(list(runs["label"].unique()), list(paper["method"].unique()))  # the same in every plot
    written = []
    for dataset in sorted(runs["dataset"].unique()):
        md, tex = render(runs, paper, dataset, len(runs.attrs.get("skipped", ())))
        path_component(dataset, "dataset")  # names read from metrics.json files choose output paths: keep them plain
        for path, text in ((out / f"{dataset}.md", md), (out / f"{dataset}.tex", tex)):
            write_text(path, text + "\n")
            written.append(str(path))
        for network in sorted(runs[runs["dataset"] == dataset]["network"].unique()):
            path = out / f"{dataset}-{path_component(network, 'network')}.png"
            mine = runs[(runs["dataset"] == dataset) & (runs["network"] == network)]
            theirs = paper[(paper["dataset"] == dataset) & (paper["network"] == network)]
            plot(mine, with_settings(summary(mine)), theirs, styles, f"{dataset} {network}", path)
            written.append(str(path))
    return written

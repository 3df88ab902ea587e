"""Reports: one row per configuration (mean ± std over its seeds), the FLOP band and code checks, the paper's rows
with their source and note, the plot's legend and looks, the files written and where."""

import json
import math

import pandas as pd
import pytest
from runner_helpers import LATENCY, write_spec

from tasbench.errors import ConfigError
from tasbench.presets import preset
from tasbench.report.paper import COLUMNS, PACKAGED, read_paper
from tasbench.report.plots import Look, count_text, method_styles, pareto_front, plot
from tasbench.report.tables import collect, render, summary, with_settings, write_report
from tasbench.runner.store import config_hash

from helpers import run_cli

UNPRUNED_MACS = 125_747_850


def fake_run(
    root, label, ratio, seed, top1, macs, unpruned=90.0, dataset="cifar10", network="resnet56", epochs=300, **metrics
):
    """A finished run directory as run_one writes it (params.json, metrics.json) with made-up numbers. `epochs` is
    the retraining recipe's; `metrics` adds fields to metrics.json (target_band, in_band, code)."""
    method = label.split(" ")[0].lower()
    config = {
        "kind": "pruning-run/1",
        "data": {"dataset": dataset},
        "network": network,
        "shortcut": "official",
        "method": method,
        "options": {"tolerance": 0.01},
        "ratio": ratio,
        "seed": seed,
        "recipe": {"name": "kd", "epochs": epochs},
        "teacher": {"hash": f"teacher{seed}", "train": {"epochs": 300, "seed": seed}},
    }
    out = root / method / config_hash(config)
    out.mkdir(parents=True)
    (out / "params.json").write_text(json.dumps({"hash": out.name, "config": config, "label": label, "seed": seed}))
    metrics = {
        "dataset": dataset,
        "network": network,
        "label": label,
        "method": method,
        "recipe": "kd",
        "ratio": ratio,
        "seed": seed,
        "hash": out.name,
        "unpruned_top1": unpruned,
        "top1": top1,
        "top5": 99.0,
        "acc_drop": unpruned - top1,
        "macs": macs,
        "unpruned_macs": UNPRUNED_MACS,
        "params": 1000,
        "flop_reduction_pct": 100 * (1 - macs / UNPRUNED_MACS),
        "teacher_hash": f"teacher{seed}",
        "environment": {"device": "AMD EPYC", "torch": "2.15.0", "git_commit": "c2dc34ed3513958ba02"},
        "timing": {"latency_ms_batch1": 1.0},
        **metrics,
    }
    (out / "metrics.json").write_text(json.dumps(metrics))
    return out


@pytest.fixture
def runs(tmp_path):
    for seed, (a, b) in enumerate([(91.0, 89.0), (93.0, 90.0)]):
        fake_run(tmp_path, "Uniform", 0.5, seed, a, 62_000_000)
        fake_run(tmp_path, "Uniform", 0.3, seed, b, 37_000_000)
        fake_run(tmp_path, "Other", 0.5, seed, 88.0 + seed, 60_000_000)
    (tmp_path / "train" / "t").mkdir(parents=True)
    (tmp_path / "train" / "t" / "metrics.json").write_text(json.dumps({"top1": 90.0}))  # a teacher: not a row
    return collect(tmp_path)


def cells(md: str, first: str) -> list[list[str]]:
    """The cells of the Markdown table rows whose first cell starts with `first`."""
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if line.startswith("| ")]
    return [r for r in rows if r[0].startswith(first)]


def test_summary_is_mean_and_sample_std_over_seeds(runs):
    assert len(runs) == 6
    stats = summary(runs).set_index(["label", "ratio"])
    row = stats.loc[("Uniform", 0.5)]
    assert row["seeds"] == 2 and row["top1_mean"] == 92.0 and math.isclose(row["top1_std"], math.sqrt(2))
    assert row["drop_mean"] == -2.0 and row["macs"] == 62_000_000 and row["flop_ratio"] == 62_000_000 / UNPRUNED_MACS


def test_runs_that_differ_beyond_the_seed_are_separate_rows_that_say_how(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path, "Uniform", 0.5, seed, 91.0 + seed, 62_000_000)
    fake_run(tmp_path, "Uniform", 0.5, 0, 80.0, 62_000_000, epochs=3)
    fake_run(tmp_path, "Other", 0.5, 0, 85.0, 62_000_000)
    stats = with_settings(summary(collect(tmp_path)))
    assert sorted(zip(stats["label"], stats["setting"], stats["seeds"], stats["top1_mean"])) == [
        ("Other", "", 1, 85.0),
        ("Uniform", "recipe.epochs=3", 1, 80.0),
        ("Uniform", "recipe.epochs=300", 2, 91.5),
    ]
    md, _ = render(collect(tmp_path), read_paper(None), "cifar10")
    assert [r[:3] + r[-1:] for r in cells(md, "ours")] == [
        ["ours", "Other", "", "1"],
        ["ours", "Uniform", "recipe.epochs=3", "1"],
        ["ours", "Uniform", "recipe.epochs=300", "2"],
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_three_configurations_of_real_runs_are_three_rows_with_their_own_teachers(capsys, tmp_path):
    """Three sweeps of one method into one root, differing in the retraining and then the teacher's epochs."""
    spec, root = str(write_spec(tmp_path, ratios=[0.5])), tmp_path / "runs"
    for teacher, recipe in ((1, 1), (1, 2), (2, 2)):
        code, _, _ = run_cli(
            capsys,
            "sweep",
            spec,
            "--out",
            str(root),
            "--wandb",
            "disabled",
            "--threads",
            "1",
            *LATENCY,
            "--set",
            f"teacher.epochs={teacher}",
            "--set",
            f"recipes.0.epochs={recipe}",
        )
        assert code == 0
    code, out, _ = run_cli(capsys, "report", "--runs", str(root))
    report = root / "report"
    assert code == 0 and out == {
        "runs": 3,
        "skipped": 0,
        "written": [str(report / n) for n in ("proxy.md", "proxy.tex", "proxy-resnet20.png")],
    }
    teachers = {p.parent.name: json.loads(p.read_text())["top1"] for p in (root / "train").glob("*/metrics.json")}
    assert len(teachers) == 2
    rows = cells((report / "proxy.md").read_text(), "ours")
    assert [r[2] for r in rows] == [
        "recipe.epochs=1, teacher.epochs=1",
        "recipe.epochs=2, teacher.epochs=1",
        "recipe.epochs=2, teacher.epochs=2",
    ]
    runs = collect(root)
    for row in rows:  # each row's unpruned accuracy is its own teacher's
        epochs = int(row[2][-1])
        (teacher,) = {h for h, e in zip(runs["teacher_hash"], runs["fields"]) if e["teacher.epochs"] == epochs}
        assert row[6] == f"{teachers[teacher]:.2f} ± 0.00" and row[-1] == "1"
    legend = plot(
        runs,
        with_settings(summary(runs)),
        read_paper(None),
        method_styles(["Uniform"], []),
        "proxy",
        tmp_path / "p.png",
    )
    assert [e for e in legend if e.startswith("unpruned")] == [
        "unpruned (teacher.epochs=1), 1 teacher",
        "unpruned (teacher.epochs=2), 1 teacher",
    ]


def test_runs_written_before_metrics_recorded_the_arch_report_beside_newer_ones(tmp_path):
    """metrics.json's `arch` (the pruned net) is newer than some stored runs: the report reads both alike."""
    arch = preset("resnet56", 10, "cifar").to_dict()
    fake_run(tmp_path, "Uniform", 0.5, 0, 91.0, 62_000_000)  # written before: no "arch"
    fake_run(tmp_path, "Uniform", 0.5, 1, 93.0, 62_000_000, arch=arch)
    runs = collect(tmp_path)
    assert runs.attrs["skipped"] == [] and len(runs) == 2
    (row,) = cells(render(runs, read_paper(None), "cifar10")[0], "ours")
    assert row[1] == "Uniform" and row[-1] == "2" and "92.00 ± 1.41" in row


def test_a_net_outside_its_band_is_marked_with_the_band(tmp_path):
    tas, rest = tmp_path / "tas", tmp_path / "rest"
    fake_run(tas, "TAS", 0.7, 0, 90.0, int(0.516 * UNPRUNED_MACS), target_band=[0.65, 0.7], in_band=False)
    fake_run(tas, "TAS", 0.7, 1, 91.0, int(0.69 * UNPRUNED_MACS), target_band=[0.65, 0.7], in_band=True)
    assert summary(collect(tas))["off_band"].tolist() == [1]  # a column of bools only
    fake_run(rest, "Uniform", 0.5, 0, 91.0, int(0.5 * UNPRUNED_MACS), target_band=[0.495, 0.505], in_band=True)
    fake_run(rest, "L1 (B, paper)", 1.0, 0, 92.0, 90_907_274, target_band=None, in_band=None)
    fake_run(rest, "Other", 0.5, 0, 85.0, 62_000_000)  # written before runs recorded their band
    runs = collect([tas, rest])
    md, tex = render(runs, read_paper(None), "cifar10")
    assert [r[1:5] for r in cells(md, "ours")] == [
        ["L1 (B, paper)", "kd", "fixed shape", "0.723"],
        ["Other", "kd", "0.5", "0.493"],
        ["TAS", "kd", "0.7", "0.603 †"],
        ["Uniform", "kd", "0.5", "0.500"],
    ]
    assert (
        "- † TAS (kd) at 0.7: 1 of 2 runs outside the method's FLOP band [0.650, 0.700] (pruned / unpruned MACs)"
        in md.splitlines()
    )
    assert "- FLOP band not recorded (runs from before tas-bench recorded it): Other (kd) at 0.5" in md.splitlines()
    assert md.count("†") == 2 and r"0.603 \dag{}" in tex and r"\dag{} TAS (kd) at 0.7: 1 of 2 runs" in tex
    legend = plot(
        runs,
        with_settings(summary(runs)),
        read_paper(None),
        method_styles(list(runs["label"].unique()), []),
        "cifar10 resnet56",
        tmp_path / "p.png",
    )
    assert legend[0] == "FLOP targets 0.5, 0.7" and "a net outside its FLOP band (†)" in legend


def test_rows_from_more_than_one_code_version_are_marked(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    for seed, source in enumerate(["3f9a1c0b7d2e", "b81d4e6f0a93"]):
        fake_run(
            new,
            "Uniform",
            0.5,
            seed,
            91.0,
            62_000_000,
            code={"version": "0.1.0", "git_commit": "c2dc34ed", "source_hash": source},
        )
        fake_run(
            new,
            "Other",
            0.5,
            seed,
            88.0,
            60_000_000,
            code={"version": "0.1.0", "git_commit": "c2dc34ed", "source_hash": "3f9a1c0b7d2e"},
        )
    fake_run(new, "Uniform", 0.5, 2, 91.0, 62_000_000)  # this seed's code is not recorded
    fake_run(old, "Third", 0.5, 0, 85.0, 60_000_000)  # written before runs recorded their code
    md, tex = render(collect([new, old]), read_paper(None), "cifar10")
    assert {r[1]: r[-1] for r in cells(md, "ours")} == {"Other": "2", "Third": "1", "Uniform": "3 ‡"}
    assert (
        "- ‡ Uniform (kd) at 0.5: runs from 3 code versions (source 3f9a1c0b7d2e, b81d4e6f0a93, not recorded)"
        in md.splitlines()
    )
    assert "; code 3f9a1c0b7d2e (0.1.0), b81d4e6f0a93 (0.1.0), not recorded for 2 runs; " in md
    assert r"3 \ddag{}" in tex
    md, _ = render(collect(old), read_paper(None), "cifar10")
    assert "; code not recorded; " in md and "‡" not in md


def test_pareto_front_keeps_only_undominated_points(runs):
    front = pareto_front(summary(runs))
    # Other@60M (88.5) is beaten by Uniform@37M (89.5), which is cheaper and better.
    assert list(zip(front["label"], front["macs"])) == [("Uniform", 37_000_000), ("Uniform", 62_000_000)]
    stats = summary(runs)
    stats.loc[stats["label"] == "Other", "top1_mean"] = 91.0
    assert list(pareto_front(stats)["label"]) == ["Uniform", "Other", "Uniform"]


def test_tables_put_the_papers_rows_beside_ours_with_their_source_and_note(runs):
    md, tex = render(runs, read_paper(PACKAGED), "cifar10")
    assert [
        "ours",
        "Uniform",
        "kd",
        "0.5",
        "0.493",
        "90.00 ± 0.00",
        "92.00 ± 1.41",
        "-2.00 ± 1.41",
        "6.20e+07",
        "50.7",
        "2",
    ] in cells(md, "ours")
    tas = [r for r in cells(md, "paper") if r[1] == "TAS"]
    assert tas == [["paper (recalled) [1]", "TAS", "", "", "0.473", "94.46", "93.69", "0.77", "5.95e+07", "52.7", ""]]
    note = (
        "[1] TAS, recalled: the paper's shape is tas-official-configs/compares/CIFAR010-TAS-R56.config "
        "(59.45M, 52.7%), not C010-ResNet56.config (59.86M)"
    )
    assert f"- {note}" in md.splitlines() and md.count("- [") == 3  # TAS, PFEC and SFP have notes; LCCL, FPGM none
    assert "2 seeds" not in md and "seeds [0, 1]" in md and "AMD EPYC" in md and "torch 2.15.0" in md
    assert r"92.00 $\pm$ 1.41" in tex and r"\toprule" in tex and r"(59.45M, 52.7\%)" in tex


def test_a_paper_row_without_accuracy_shows_its_flops(tmp_path):
    fake_run(tmp_path, "TAS", 0.5, 0, 60.0, 20_000_000, dataset="cifar100", network="resnet20")
    runs = collect(tmp_path)
    paper = read_paper(PACKAGED)
    md, _ = render(runs, paper, "cifar100")
    assert cells(md, "paper") == [
        ["paper (released shape) [1]", "TAS", "", "", "0.550", "", "", "", "2.24e+07", "45.0", ""]
    ]
    theirs = paper[(paper["dataset"] == "cifar100") & (paper["network"] == "resnet20")]
    legend = plot(runs, with_settings(summary(runs)), theirs, method_styles(["TAS"], ["TAS"]), "c", tmp_path / "p.png")
    assert legend[-1] == "paper: TAS (FLOPs only)"


def test_the_shipped_paper_csv_has_a_source_and_a_note_per_row():
    paper = read_paper(PACKAGED)
    assert len(paper) == 35 and list(paper.columns) == COLUMNS
    assert set(paper["source"].str.split().str[0]) == {"seed", "recalled", "secondary", "released"}
    row = paper[(paper["network"] == "resnet110") & (paper["method"] == "TAS") & (paper["dataset"] == "cifar10")]
    assert row["pruned_acc"].item() == 94.33 and row["source"].item().startswith("seed")
    row = paper[(paper["network"] == "resnet164") & (paper["dataset"] == "cifar10")]
    assert row["flops_pruned_pct"].item() == 27.6 and "counts 178.07M = 28.1% pruned" in row["note"].item()
    unknown = paper[paper["pruned_acc"].isna()]
    assert list(unknown["network"]) == ["resnet20", "resnet32", "resnet164"] and set(unknown["dataset"]) == {"cifar100"}
    assert read_paper(None).empty and list(read_paper(None).columns) == COLUMNS


def test_one_look_per_method_in_every_plot_with_the_papers_in_its_colour():
    labels = ["TAS", "Uniform", "L1 (B, paper)", "L1 (FLOP-matched)", "Mine"]
    styles = method_styles(labels, ["TAS", "PFEC (L1)", "SFP", "FPGM"])
    assert styles.ours["TAS"] == styles.paper["TAS"] == Look("tab:blue", "o")
    assert styles.ours["L1 (B, paper)"] == styles.paper["PFEC (L1)"] == Look("tab:green", "^")
    assert styles.ours["L1 (FLOP-matched)"] == Look("tab:green", "<")
    assert styles.paper["SFP"] == Look("tab:purple", "v") and styles.ours["Mine"] == Look("tab:cyan", "<")
    assert len(set(styles.ours.values())) == len(labels)
    assert method_styles(["TAS", "Uniform"], []).ours == {"TAS": styles.ours["TAS"], "Uniform": styles.ours["Uniform"]}
    assert [count_text(c, "seed") for c in ([1], [3, 3], [1, 3])] == ["1 seed", "3 seeds", "1-3 seeds"]


def test_write_report_writes_markdown_latex_and_a_plot(runs, tmp_path):
    written = write_report(runs, read_paper(PACKAGED), tmp_path / "results")
    assert [p.split("/")[-1] for p in written] == ["cifar10.md", "cifar10.tex", "cifar10-resnet56.png"]
    assert (tmp_path / "results" / "cifar10-resnet56.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mine = runs[runs["network"] == "resnet56"]
    paper = read_paper(PACKAGED)
    theirs = paper[(paper["dataset"] == "cifar10") & (paper["network"] == "resnet56")]
    styles = method_styles(list(runs["label"].unique()), list(paper["method"].unique()))
    assert plot(mine, with_settings(summary(mine)), theirs, styles, "cifar10 resnet56", tmp_path / "p.png") == [
        "FLOP targets 0.3, 0.5",
        "unpruned, 2 teachers",
        "Other (kd)",
        "Uniform (kd)",
        "Pareto front (means)",
        "paper: TAS",
        "paper: PFEC (L1)",
        "paper: LCCL",
        "paper: SFP",
        "paper: FPGM",
    ]


def test_report_reads_every_root_and_writes_beside_the_first(capsys, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    fake_run(first, "Uniform", 0.5, 0, 91.0, 62_000_000)
    fake_run(second, "Other", 0.5, 0, 88.0, 60_000_000)
    code, out, _ = run_cli(capsys, "report", "--runs", str(first), "--runs", str(second), "--paper", "none")
    assert code == 0 and out["runs"] == 2 and out["written"][0] == str(first / "report" / "cifar10.md")
    md = (first / "report" / "cifar10.md").read_text()
    assert [r[1] for r in cells(md, "ours")] == ["Other", "Uniform"] and "paper (" not in md
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the packaged paper CSV is found from any working directory
    code, out, _ = run_cli(capsys, "report", "--runs", str(second), "--out", "r")
    assert code == 0 and "paper (recalled)" in (elsewhere / "r" / "cifar10.md").read_text()
    assert not (second / "report").exists()


def test_collect_refuses_a_run_twice_and_names_empty_or_missing_roots(tmp_path):
    run = fake_run(tmp_path / "a", "Uniform", 0.5, 0, 91.0, 62_000_000)
    twin = tmp_path / "b" / run.parent.name / run.name
    twin.parent.mkdir(parents=True)
    twin.symlink_to(run)
    with pytest.raises(ConfigError, match=f"run uniform/{run.name} is under both '{tmp_path / 'a'}' and '"):
        collect([tmp_path / "a", tmp_path / "b"])
    assert len(collect([tmp_path / "a", tmp_path / "a"])) == 1  # one root given twice is read once
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no finished runs under '.*empty'"):
        collect(tmp_path / "empty")
    with pytest.raises(ConfigError, match="results root '.*nope' does not exist"):
        collect([tmp_path / "a", tmp_path / "nope"])
    assert isinstance(collect(tmp_path / "a"), pd.DataFrame)

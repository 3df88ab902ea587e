"""Reports: mean ± std over seeds, the paper's rows with their source, the Pareto front, and the files written."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tasbench.cli import main
from tasbench.errors import ConfigError
from tasbench.report import collect, pareto_front, read_paper, render, summary, write_report

PAPER = Path(__file__).parents[1] / "results" / "paper" / "paper-results.csv"


def fake_run(root, label, ratio, seed, top1, macs, unpruned=90.0, dataset="cifar10", network="resnet56"):
    """A finished run directory as run_one writes it, with made-up numbers."""
    out = root / label.lower() / f"{label}{ratio}{seed}"
    out.mkdir(parents=True)
    metrics = {"dataset": dataset, "network": network, "label": label, "method": label.lower(), "recipe": "kd",
               "ratio": ratio, "seed": seed, "hash": out.name, "unpruned_top1": unpruned, "top1": top1, "top5": 99.0,
               "acc_drop": unpruned - top1, "macs": macs, "unpruned_macs": 125_747_850, "params": 1000,
               "flop_reduction_pct": 100 * (1 - macs / 125_747_850), "teacher_hash": "t",
               "environment": {"device": "AMD EPYC", "torch": "2.15.0", "git_commit": "c2dc34ed3513958ba02"},
               "timing": {"latency_ms_batch1": 1.0}}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def runs(tmp_path):
    for seed, (a, b) in enumerate([(91.0, 89.0), (93.0, 90.0)]):
        fake_run(tmp_path, "Uniform", 0.5, seed, a, 62_000_000)
        fake_run(tmp_path, "Uniform", 0.3, seed, b, 37_000_000)
        fake_run(tmp_path, "Other", 0.5, seed, 88.0 + seed, 60_000_000)
    (tmp_path / "train" / "t").mkdir(parents=True)
    (tmp_path / "train" / "t" / "metrics.json").write_text(json.dumps({"top1": 90.0}))  # a teacher: not a row
    return collect(tmp_path)


def test_summary_is_mean_and_sample_std_over_seeds(runs):
    assert len(runs) == 6
    stats = summary(runs).set_index(["label", "ratio"])
    row = stats.loc[("Uniform", 0.5)]
    assert row["seeds"] == 2 and row["top1_mean"] == 92.0 and math.isclose(row["top1_std"], math.sqrt(2))
    assert row["drop_mean"] == -2.0 and row["macs"] == 62_000_000


def test_pareto_front_keeps_only_undominated_points(runs):
    front = pareto_front(summary(runs))
    # Other@60M (88.5) is beaten by Uniform@37M (89.5), which is cheaper and better.
    assert list(zip(front["label"], front["macs"])) == [("Uniform", 37_000_000), ("Uniform", 62_000_000)]
    stats = summary(runs)
    stats.loc[stats["label"] == "Other", "top1_mean"] = 91.0
    assert list(pareto_front(stats)["label"]) == ["Uniform", "Other", "Uniform"]


def test_tables_put_the_papers_rows_beside_ours_with_their_source(runs):
    md, tex = render(runs, read_paper(PAPER), "cifar10")
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if line.startswith("| ours")]
    assert ["ours", "Uniform", "kd", "0.5", "90.00 ± 0.00", "92.00 ± 1.41", "-2.00 ± 1.41", "6.20e+07", "50.7",
            "2"] in cells  # fmt: skip
    assert "paper (recalled)" in md and "| TAS" in md and "93.69" in md  # the paper's ResNet-56 TAS row
    assert "2 seeds" not in md and "seeds [0, 1]" in md and "AMD EPYC" in md and "torch 2.15.0" in md
    assert r"92.00 $\pm$ 1.41" in tex and r"\toprule" in tex


def test_write_report_writes_markdown_latex_and_a_plot(runs, tmp_path):
    written = write_report(runs, read_paper(PAPER), tmp_path / "results")
    assert [p.split("/")[-1] for p in written] == ["cifar10.md", "cifar10.tex", "cifar10-resnet56.png"]
    assert (tmp_path / "results" / "cifar10-resnet56.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_shipped_paper_csv_is_the_reference_with_its_source_column():
    paper = pd.read_csv(PAPER)
    assert len(paper) == 32 and set(paper["source"].str.split().str[0]) == {"seed", "recalled"}
    row = paper[(paper["network"] == "resnet110") & (paper["method"] == "TAS") & (paper["dataset"] == "cifar10")]
    assert row["pruned_acc"].item() == 94.33 and row["source"].item().startswith("seed")


def test_report_command_and_its_errors(capsys, runs, tmp_path):
    assert main(["report", "--runs", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert json.loads(capsys.readouterr()[0])["runs"] == 6
    with pytest.raises(ConfigError, match="no finished runs under"):
        collect(tmp_path / "empty")
    with pytest.raises(ConfigError, match="do not exist"):
        read_paper(tmp_path / "nope.csv")

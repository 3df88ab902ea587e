"""The proxy regression check (`tas-bench regress`) and the benchmark baseline check (benchmarks/conftest.py)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from runner_helpers import write_spec

from tasbench.errors import ConfigError
from tasbench.runner import regression
from tasbench.runner.regression import (
    EXACT,
    FORMAT,
    TOLERATED,
    K,
    compare,
    default_expected,
    read_expected,
    seed_spread,
)
from tasbench.runner.spec import load_sweep

from helpers import assert_one_line_error, run_cli

ROOT = Path(__file__).parents[1]
SIGMA = {"top1": 2.0, "test_loss": 0.05, "train_loss": 0.02}
CPU = "Some CPU(R) Model 9"  # the CPU model the stored results below came from


def observation(top1=50.0, test_loss=1.5, train_loss=1.0, macs=1000, config=None) -> dict:
    return {
        "hash": "abc",
        "config": config or {"recipe": {"kd_temperature": 4.0}},
        "macs": macs,
        "xchannels": [3, 16, 8],
        "xblocks": [3, 3, 3],
        "top1": top1,
        "test_loss": test_loss,
        "train_loss": train_loss,
    }


def stored(runs: dict) -> dict:
    return {"format": FORMAT, "k": K, "spread": {"sigma": SIGMA}, "environment": {"device": CPU}, "runs": runs}


def failed(rows) -> set:
    return {(r.run, r.metric) for r in rows if not r.ok}


def test_identical_results_pass_and_every_metric_is_compared():
    runs = {"A r0.5 s0": observation(), "B r0.5 s0": observation(top1=40.0)}
    rows, notes = compare(stored(runs), runs, CPU)
    assert failed(rows) == set() and notes == []
    assert len(rows) == 2 * (len(EXACT) + len(TOLERATED)) + len(TOLERATED)  # per run, then the means


def test_flops_and_shape_must_match_exactly():
    want = {"A r0.5 s0": observation()}
    now = {"A r0.5 s0": {**observation(macs=1001), "xblocks": [3, 2, 3]}}
    assert failed(compare(stored(want), now, CPU)[0]) == {("A r0.5 s0", "macs"), ("A r0.5 s0", "xblocks")}


def test_one_run_fails_beyond_k_sigma_sqrt2():
    band = K * SIGMA["top1"] * math.sqrt(2)
    want = {f"{m} r0.5 s0": observation() for m in "ABCDEFGH"}
    inside = {**want, "A r0.5 s0": observation(top1=50.0 + 0.99 * band)}
    outside = {**want, "A r0.5 s0": observation(top1=50.0 - 1.01 * band)}
    assert failed(compare(stored(want), inside, CPU)[0]) == set()
    assert failed(compare(stored(want), outside, CPU)[0]) == {("A r0.5 s0", "top1")}


def test_a_small_shift_of_every_run_is_caught_by_the_mean():
    """Each run moves by 1.2 sigma*sqrt(2): inside its own band (3), outside the mean's of 8 runs (3/sqrt(8) = 1.06)."""
    shift = 1.2 * SIGMA["train_loss"] * math.sqrt(2)
    want = {f"{m} r0.5 s0": observation() for m in "ABCDEFGH"}
    now = {key: observation(train_loss=1.0 + shift) for key in want}
    assert failed(compare(stored(want), now, CPU)[0]) == {("mean of 8 runs", "train_loss")}


def test_a_changed_config_is_named_in_a_note():
    want = {"A r0.5 s0": observation()}
    now = {"A r0.5 s0": {**observation(config={"recipe": {"kd_temperature": 1.0}}), "hash": "def"}}
    rows, notes = compare(stored(want), now, CPU)
    assert failed(rows) == set()
    assert notes == ["A r0.5 s0: config changed (abc -> def): recipe.kd_temperature: 4.0 -> 1.0"]


def test_seed_spread_pools_the_variance_of_runs_that_differ_only_by_seed(tmp_path):
    runs = load_sweep(write_spec(tmp_path, seeds=[0, 1, 2]), []).runs  # 2 ratios x 3 seeds
    top1 = {0.5: [10.0, 12.0, 14.0], 0.3: [20.0, 20.0, 26.0]}  # sample variances 4 and 12
    seen = [(cfg, observation(top1=top1[cfg.ratio][cfg.seed])) for cfg in runs]
    spread = seed_spread(seen)
    assert spread["sigma"]["top1"] == pytest.approx(math.sqrt((4 + 12) / 2))
    assert spread["groups"] == 2 and spread["dof"] == 4
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        seed_spread([(cfg, obs) for cfg, obs in seen if cfg.seed == 0])


def test_on_another_cpu_model_only_the_tolerated_values_are_compared():
    """Exact MACs and shapes hold on one CPU model: stored on another, a flipped TAS width is no regression, but a
    top-1 beyond its band still is, and a note says what was left out and which file `--update` would store."""
    want = {"A r0.5 s0": observation()}
    now = {"A r0.5 s0": observation(macs=1200, top1=50.0 + 20 * SIGMA["top1"])}
    assert failed(compare(stored(want), now, CPU)[0]) == {
        ("A r0.5 s0", "macs"),
        ("A r0.5 s0", "top1"),
        ("mean of 1 runs", "top1"),
    }
    rows, notes = compare(stored(want), now, "AMD EPYC")
    assert failed(rows) == {("A r0.5 s0", "top1"), ("mean of 1 runs", "top1")}
    assert not {r.metric for r in rows} & set(EXACT)
    assert notes == [
        f"macs, xchannels, xblocks not compared: the stored results come from {CPU!r}, this is "
        "'AMD EPYC', and exact values hold only on one CPU model; `tas-bench regress --update` here "
        "stores amd-epyc.json"
    ]


def test_the_default_stored_file_is_this_cpu_models_else_another_models(tmp_path, monkeypatch):
    monkeypatch.setattr(regression, "REGRESSION_DIR", tmp_path)
    assert default_expected("AMD EPYC", update=False) == tmp_path / "amd-epyc.json"  # none stored: read_expected says
    (tmp_path / "intel-xeon-processor.json").write_text("{}")
    assert default_expected("AMD EPYC", update=False) == tmp_path / "intel-xeon-processor.json"
    assert default_expected("AMD EPYC", update=True) == tmp_path / "amd-epyc.json"  # --update stores this model's
    (tmp_path / "amd-epyc.json").write_text("{}")
    assert default_expected("AMD EPYC", update=False) == tmp_path / "amd-epyc.json"
    assert default_expected("Intel(R) Xeon(R) Processor", update=False) == tmp_path / "intel-xeon-processor.json"


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no stored regression results at"),
        (b"\xff\xfe not json", "are not valid JSON"),
        (
            json.dumps({"format": "tas-bench-regression/0", "runs": {}}).encode(),
            "are of format 'tas-bench-regression/0'",
        ),
        (json.dumps([1, 2]).encode(), "are of format None"),
        (
            json.dumps({"format": FORMAT, "runs": {"Uniform r0.5 s0": {}}}).encode(),
            "no stored result for 'Uniform r0.3 s0'",
        ),
        (
            json.dumps(
                {"format": FORMAT, "runs": {"Uniform r0.5 s0": {}, "Uniform r0.3 s0": {}, "X r1 s0": {}}}
            ).encode(),
            "a stored run 'X r1 s0' the spec lacks",
        ),
    ],
)
def test_a_bad_stored_file_says_how_to_regenerate_it(tmp_path, capsys, content, message):
    path = tmp_path / "regression.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="tas-bench regress --update") as e:
        read_expected(path, ["Uniform r0.5 s0", "Uniform r0.3 s0"])
    assert message in str(e.value)
    # Through the CLI: exit 2 and one line, before any run starts.
    argv = ["regress", "--spec", str(write_spec(tmp_path)), "--expected", str(path)]
    assert_one_line_error(capsys, argv, message)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_update_then_check_passes_and_a_changed_result_fails(tmp_path, capsys):
    """End to end on a tiny spec: `--update` stores seed 0 and the spread of seeds 0-1; a fresh rerun matches it
    bit for bit; a stored file with one run's MACs and train loss moved makes the check exit 1 naming those rows."""
    spec = write_spec(
        tmp_path,
        methods=[
            {"method": "uniform", "label": "Uniform"},
            {"method": "tas", "label": "TAS", "options": {"epochs": 1}},
        ],
    )
    expected = tmp_path / "regression.json"
    common = ["--spec", str(spec), "--expected", str(expected), "--workers", "1", "--threads", "1"]
    code, result, err = run_cli(capsys, "regress", "--update", "--spread-seeds", "1", *common)
    assert code == 0 and result["runs"] == 4 and result["spread"]["dof"] == 4
    assert "0 runs already done, 8 to run, 2 teachers to train" in err  # the executor's progress lines
    content = json.loads(expected.read_text())
    assert sorted(content["runs"]) == ["TAS r0.3 s0", "TAS r0.5 s0", "Uniform r0.3 s0", "Uniform r0.5 s0"]

    code, result, err = run_cli(capsys, "regress", *common, "--no-progress")
    assert code == 0 and result["passed"] and result["failed"] == [], err
    assert "all 27 values match" in err  # 4 runs x 6 values + 3 means
    assert "runs already done" not in err  # --no-progress: none of them

    run = content["runs"]["TAS r0.5 s0"]
    run["macs"] += 1
    run["train_loss"] += 10 * content["spread"]["sigma"]["train_loss"] + 1e-3
    expected.write_text(json.dumps(content))
    code, out, err = run_cli(capsys, "regress", *common)
    assert code == 1 and not out["passed"]
    # 10 sigma in one run moves the mean of 4 by 2.5 sigma, beyond its band of 3*sqrt(2/4) = 2.1 sigma
    assert {(f["run"], f["metric"]) for f in out["failed"]} == {
        ("TAS r0.5 s0", "macs"),
        ("TAS r0.5 s0", "train_loss"),
        ("mean of 4 runs", "train_loss"),
    }
    assert "REGRESSION" in err and "tas-bench regress --update" in err


def pytest_bench(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """One cheap benchmark of benchmarks/ in a child pytest, as `nox -s bench` runs them."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/test_hot_paths.py",
            "--benchmark-only",
            "-k",
            "flop_count_analytic",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_benchmark_baseline_round_trip_and_bad_baselines(tmp_path):
    """A baseline written by the suite compares; a missing, foreign or incomplete one stops with how to fix it."""
    baseline = tmp_path / "baseline.json"
    made = pytest_bench(tmp_path, f"--benchmark-json={baseline}")
    assert made.returncode == 0, made.stdout + made.stderr
    saved = json.loads(baseline.read_text())
    assert saved["tas_bench"]["format"].startswith("tas-bench-benchmarks/")
    [entry] = saved["benchmarks"]
    assert entry["extra_info"]["ratio_to_reference"] == pytest.approx(entry["stats"]["median"])

    ok = pytest_bench(tmp_path, f"--benchmark-compare={baseline}", "--benchmark-compare-fail=median:1000000%")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    entry["stats"] = {k: v / 1e6 if isinstance(v, float) else v for k, v in entry["stats"].items()}
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(saved))
    regressed = pytest_bench(tmp_path, f"--benchmark-compare={slower}", "--benchmark-compare-fail=median:50%")
    assert regressed.returncode != 0 and "Performance has regressed" in regressed.stdout + regressed.stderr

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**saved, "tas_bench": {"format": "tas-bench-benchmarks/0"}}))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**saved, "benchmarks": []}))
    for path, problem in [
        (tmp_path / "missing.json", "no such file"),
        (other, "format 'tas-bench-benchmarks/0'"),
        (empty, "has no entry for benchmarks/test_hot_paths.py::test_flop_count_analytic"),
    ]:
        run = pytest_bench(tmp_path, f"--benchmark-compare={path}", "--benchmark-compare-fail=median:50%")
        text = run.stdout + run.stderr
        assert run.returncode == 4 and problem in text and "nox -s bench_update" in text, text
        assert "Traceback" not in text

"""Damaged or foreign result files (run_files.py): named by path, moved aside and recomputed by the runner, skipped
with a warning by the report; strict JSON for diverged runs; a sweep that gives one run twice is refused."""

import json
import math

import pytest
import yaml
from runner_helpers import LATENCY, TINY_SPEC, write_spec
from test_report import fake_run

from tasbench.atomic import write_json
from tasbench.presets import PRESETS
from tasbench.runner.failures import read_failure
from tasbench.runner.run_files import RUN_METRICS, TEACHER_METRICS, DamagedRunFile, read_run_file, recorded_arch
from tasbench.runner.supersede import superseded

from helpers import assert_one_line_error, run_cli


def strict(path) -> dict:
    """`path` parsed as strict JSON, as a JavaScript or Go parser would: NaN or Infinity is an error."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path} holds {name}"))


# Files as a disk, a copy or another tool leaves them, and what the reader says of each.
DAMAGES = [
    (b"42", None, "is not a tas-bench run file: holds a JSON number, expected an object"),
    (b'["top1", 91.0]', None, "is not a tas-bench run file: holds a JSON array, expected an object"),
    (b'{"top1": 91.0, "top5"', None, "is damaged: truncated (it ends mid-value at byte 21)"),
    (b'{"top1": 91.0,\n', None, "is damaged: truncated (it ends mid-value at byte 15)"),
    (b"", None, "is damaged: empty (0 bytes)"),
    (b"\x00\x00\x00\x00", None, "is damaged: not JSON (Expecting value at line 1, column 1)"),
    (b'{"top1": 91.0}\xff', None, "is damaged: not UTF-8 text (byte 14)"),
    (b"{]", None, "is damaged: not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    (b'{"a": 1} {"b": 2}', None, "is damaged: not JSON (Extra data at line 1, column 10)"),
    (b'{"top1": 91.0, "top5": 99.0}', TEACHER_METRICS, "is not a tas-bench run file: lacks 'train_seconds'"),
    (
        b'{"top1": "high", "top5": 99.0, "train_seconds": 1, "wall_seconds": 2, "environment": {}}',
        TEACHER_METRICS,
        "is not a tas-bench run file: 'top1' is 'high', expected a number",
    ),
    (
        b'{"top1": true, "top5": 99.0, "train_seconds": 1, "wall_seconds": 2, "environment": {}}',
        TEACHER_METRICS,
        "is not a tas-bench run file: 'top1' is True, expected a number",
    ),
]


@pytest.mark.parametrize("content,schema,problem", DAMAGES, ids=[p[:40] for _, _, p in DAMAGES])
def test_the_reader_names_the_file_and_what_is_wrong(tmp_path, content, schema, problem):
    path = tmp_path / "metrics.json"
    path.write_bytes(content)
    with pytest.raises(DamagedRunFile) as e:
        read_run_file(path, schema)
    assert str(e.value) == f"{str(path)!r} {problem}" or str(e.value).startswith(f"{str(path)!r} {problem}")


def test_the_reader_names_a_missing_file_and_a_directory(tmp_path):
    with pytest.raises(DamagedRunFile, match=r"metrics.json' is missing$"):
        read_run_file(tmp_path / "metrics.json")
    with pytest.raises(DamagedRunFile, match=r"' is damaged: it is a directory, not a JSON file$"):
        read_run_file(tmp_path)


def test_a_nested_key_of_the_schema_is_checked(tmp_path):
    path = tmp_path / "metrics.json"
    metrics = json.loads((fake_run(tmp_path, "Uniform", 0.5, 0, 91.0, 1000) / "metrics.json").read_text())
    read_run_file(path.parent / "uniform" / metrics["hash"] / "metrics.json", RUN_METRICS)  # a real one passes
    write_json(path, {**metrics, "environment": {"device": "cpu", "torch": 2.1, "git_commit": None}})
    with pytest.raises(DamagedRunFile, match="'environment.torch' is 2.1, expected a string$"):
        read_run_file(path, RUN_METRICS)


def test_a_recorded_arch_is_optional_and_a_malformed_one_is_foreign(tmp_path):
    path = tmp_path / "metrics.json"
    arch = PRESETS["resnet20"](num_classes=10)
    assert recorded_arch(path, {"top1": 91.0}) is None  # written before metrics.json recorded it
    assert recorded_arch(path, {"arch": arch.to_dict()}) == arch
    with pytest.raises(
        DamagedRunFile,
        match=r"is not a tas-bench run file: 'arch' does not rebuild a network "
        r"\(arch is missing field 'xchannels'\)$",
    ) as e:
        recorded_arch(path, {"arch": {k: v for k, v in arch.to_dict().items() if k != "xchannels"}})
    assert e.value.foreign


def test_non_finite_numbers_are_written_as_null_and_old_ones_read_as_null(tmp_path):
    write_json(tmp_path / "m.json", {"loss": float("nan"), "history": [{"loss": float("inf")}], "top1": 10.0})
    assert strict(tmp_path / "m.json") == {"loss": None, "history": [{"loss": None}], "top1": 10.0}
    (tmp_path / "old.json").write_text('{"loss": NaN, "max": -Infinity, "top1": 10.0}')  # as older versions wrote
    assert read_run_file(tmp_path / "old.json") == {"loss": None, "max": None, "top1": 10.0}


def test_a_damaged_error_json_is_still_a_failure_that_names_the_file(tmp_path):
    (tmp_path / "error.json").write_text("42")
    failure = read_failure(tmp_path)
    assert (
        failure["error"] == "unknown"
        and "error.json' is not a tas-bench run file: holds a JSON number" in failure["message"]
    )


# --- report: a damaged or foreign run is skipped with a warning naming it; the report says how many


def damage_metrics(content: bytes):
    return lambda run: (run / "metrics.json").write_bytes(content)


def edit_metrics(**changes):
    def apply(run):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, **changes}))

    return apply


DAMAGED_REPORTS = [
    (
        damage_metrics(b"42"),
        "metrics.json' is not a tas-bench run file: holds a JSON number, expected an object; skipped",
    ),
    (damage_metrics(b'{"dataset": "cifar10", "teacher_hash": "t'), "metrics.json' is damaged: truncated"),
    (
        damage_metrics(b'{"teacher_hash": "\xe9t\xe9"}'),
        "metrics.json' is damaged: not UTF-8 text (byte 18); skipped (its sweep recomputes it, keeping it aside)",
    ),
    (
        damage_metrics(b'{"teacher_hash": "t", "accuracy": 91}'),
        "metrics.json' is not a tas-bench run file: lacks 'dataset'; skipped",
    ),
    (edit_metrics(top1="91%"), "metrics.json' is not a tas-bench run file: 'top1' is '91%', expected a number"),
    (
        edit_metrics(environment={"device": "cpu"}),
        "metrics.json' is not a tas-bench run file: lacks 'environment.torch'",
    ),
    (
        edit_metrics(unpruned_macs=0),
        "metrics.json' is not a tas-bench run file: does not hold a tas-bench run (ZeroDivisionError",
    ),
    (
        lambda run: (run / "params.json").write_text('{"config": [1]}'),
        "params.json' is not a tas-bench run file: 'config' is [1], expected an object",
    ),
    (lambda run: (run / "params.json").write_bytes(b"\x89PNG"), "params.json' is damaged: not UTF-8 text (byte 0)"),
]


@pytest.mark.parametrize("damage,warning", DAMAGED_REPORTS, ids=[w[:40] for _, w in DAMAGED_REPORTS])
def test_report_skips_a_damaged_run_with_a_warning_and_says_so(capsys, tmp_path, damage, warning):
    root = tmp_path / "runs"
    fake_run(root, "Uniform", 0.5, 0, 91.0, 62_000_000)
    bad = fake_run(root, "Uniform", 0.5, 1, 93.0, 62_000_000)
    damage(bad)
    code, out, err = run_cli(capsys, "report", "--runs", str(root), "--paper", "none")
    assert code == 0 and out["runs"] == 1 and out["skipped"] == 1
    (line,) = err.splitlines()
    assert line.startswith(f"tas-bench: warning: '{bad}/") and warning in line and "Traceback" not in err
    header = (root / "report" / "cifar10.md").read_text().splitlines()[2]
    assert header.startswith("1 runs on") and header.endswith(
        "; 1 result file skipped, damaged or not a tas-bench run's (`tas-bench report` names each in a warning)"
    )


def test_report_with_only_damaged_runs_is_one_line_naming_the_first_and_the_count(capsys, tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        (fake_run(root, "Uniform", 0.5, seed, 91.0, 62_000_000) / "metrics.json").write_text("42")
    assert_one_line_error(
        capsys,
        ["report", "--runs", str(root), "--paper", "none"],
        f"no readable finished runs under '{root}': '{root}/uniform/",
    )
    assert_one_line_error(
        capsys,
        ["report", "--runs", str(root), "--paper", "none"],
        "holds a JSON number, expected an object; skipped (and 1 more file)",
    )


def test_report_marks_a_diverged_run(capsys, tmp_path):
    fake_run(tmp_path, "Uniform", 0.5, 0, 91.0, 62_000_000)
    fake_run(tmp_path, "Uniform", 0.5, 1, 10.0, 62_000_000, diverged=True, test_loss=None)
    code, out, _ = run_cli(capsys, "report", "--runs", str(tmp_path), "--paper", "none")
    md = (tmp_path / "report" / "cifar10.md").read_text()
    assert code == 0 and "| 50.50 ± 57.28 § |" in md
    assert "- § Uniform (kd) at 0.5: 1 of 2 runs diverged (a non-finite loss" in md
    assert r"\S{}" in (tmp_path / "report" / "cifar10.tex").read_text()


# --- the runner: a damaged run or teacher is not done; the sweep moves its files aside and recomputes it


def sweep(capsys, spec, root, *extra):
    return run_cli(
        capsys,
        "sweep",
        str(spec),
        "--out",
        str(root),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--wandb",
        "disabled",
        "--no-progress",
        *LATENCY,
        *extra,
    )


@pytest.fixture
def finished(tmp_path, capsys, one_thread):  # noqa: F811 (the fixture)
    """A tiny sweep of one run, finished: (spec, root, run directory, teacher directory)."""
    spec = write_spec(tmp_path, ratios=[0.5], recipes=[{"name": "kd", "epochs": 1, "batch_size": 32}])
    root = tmp_path / "runs"
    code, out, _ = sweep(capsys, spec, root)
    assert code == 0 and len(out["runs"]) == 1
    (run,) = root.glob("uniform/[0-9a-f]*")
    (teacher,) = root.glob("train/[0-9a-f]*")
    return spec, root, run, teacher


@pytest.mark.parametrize(
    "file,content,problem",
    [
        ("metrics.json", b'{"top1": 9', "metrics.json: truncated (it ends mid-value at byte 10)"),
        ("metrics.json", b"42", "metrics.json: holds a JSON number, expected an object"),
        ("params.json", b"\xff\xfe{\x00}\x00", "params.json: not UTF-8 text (byte 0)"),
    ],
)
def test_a_damaged_run_is_planned_moved_aside_recomputed_and_then_done(capsys, finished, file, content, problem):
    spec, root, run, _ = finished
    (run / file).write_bytes(content)
    code, _, err = sweep(capsys, spec, root, "--dry-run")
    assert code == 0 and "0 done, 0 partial (resume), 1 to do; 0 teachers to train, 1 to reuse" in err
    assert f"todo, damaged {run}" in err and f"damaged: {problem}; its files move aside and it recomputes" in err
    code, out, err = sweep(capsys, spec, root)
    assert code == 0 and len(out["runs"]) == 1 and "0 runs already done, 1 to run, 0 teachers to train" in err
    (kept,) = superseded(run)
    assert kept.name.endswith("-damaged") and (kept / file).read_bytes() == content  # the damaged file is kept
    assert f"tas-bench: warning: '{run / file}' " in err and f"moved the run's files to '{kept}'" in err
    assert strict(run / "metrics.json")["top1"] >= 0 and (run / "params.json").exists() and (kept / "model.pt").exists()
    code, _, err = sweep(capsys, spec, root)
    assert code == 0 and "1 runs already done, 0 to run, 0 teachers to train" in err and "warning" not in err


def test_a_damaged_teacher_is_retrained_when_a_run_needs_it(capsys, finished):
    spec, root, run, teacher = finished
    (teacher / "metrics.json").write_text('{"top1": 12.5}')  # foreign: lacks the keys a teacher's metrics hold
    (run / "metrics.json").unlink()  # the run is to do, so it needs its teacher
    code, _, err = sweep(capsys, spec, root, "--dry-run")
    assert code == 0 and "1 teachers to train, 0 to reuse" in err
    assert f"damaged teacher (trained afresh, its files kept aside): {teacher}: metrics.json: lacks 'top5'" in err
    code, out, err = sweep(capsys, spec, root)
    assert code == 0 and len(out["runs"]) == 1 and f"warning: '{teacher / 'metrics.json'}' is not a tas-bench" in err
    assert strict(teacher / "metrics.json")["top5"] >= 0 and superseded(teacher)[0].name.endswith("-damaged")


TRAIN = [
    "train",
    "--proxy-train",
    "64",
    "--proxy-test",
    "32",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--no-progress",
    "--device",
    "cpu",
]


def test_train_recomputes_a_damaged_run_instead_of_already_done(capsys, tmp_path, one_thread):  # noqa: F811
    argv = [*TRAIN, "--out", str(tmp_path)]
    code, first, _ = run_cli(capsys, *argv)
    (out,) = tmp_path.glob("train/[0-9a-f]*")
    (out / "metrics.json").write_bytes(b'{"top1": \xff')
    code, again, err = run_cli(capsys, *argv)
    assert code == 0 and "already done" not in err and f"'{out / 'metrics.json'}' is damaged: not UTF-8" in err
    assert again["top1"] == first["top1"] and strict(out / "metrics.json")["top1"] == first["top1"]  # deterministic
    assert (superseded(out)[0] / "metrics.json").read_bytes() == b'{"top1": \xff'
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and "already done" in err


def test_a_diverged_training_writes_strict_json_with_a_flag_and_says_so(capsys, tmp_path, one_thread):  # noqa: F811
    code, metrics, err = run_cli(capsys, *TRAIN, "--lr", "1e30", "--out", str(tmp_path))
    (out,) = tmp_path.glob("train/[0-9a-f]*")
    stored = strict(out / "metrics.json")
    assert code == 0 and stored["diverged"] is True and metrics["diverged"] is True
    assert stored["test_loss"] is None and math.isfinite(stored["top1"])  # accuracy is counted: finite, at chance
    assert f"tas-bench: warning: the run in '{out}' diverged (its loss went non-finite)" in err
    code, normal, _ = run_cli(capsys, *TRAIN, "--out", str(tmp_path / "fine"))
    assert normal["diverged"] is False


# --- a sweep that would give one run twice is refused when it is loaded


def spec_text(**changes) -> str:
    return yaml.safe_dump({**TINY_SPEC, **changes})


UNIFORM = {"method": "uniform"}
DUPLICATES = [
    (
        {"ratios": [0.5, 0.3, 0.5]},
        "'ratios' lists 0.5 twice (ratios[0] and ratios[2]): its runs would run once and count twice; remove one",
    ),
    ({"ratios": [1, 1.0]}, "'ratios' lists 1.0 twice (ratios[0] and ratios[1])"),
    ({"seeds": [0, 1, 0]}, "'seeds' lists 0 twice (seeds[0] and seeds[2])"),
    ({"networks": ["resnet20", "resnet20"]}, "'networks' lists 'resnet20' twice (networks[0] and networks[1])"),
    (
        {"ratios": {"resnet20": [0.5, 0.5]}},
        "'ratios.resnet20' lists 0.5 twice (ratios.resnet20[0] and ratios.resnet20[1])",
    ),
    (
        {"methods": [{**UNIFORM, "ratios": [0.4, 0.4]}]},
        "'methods[0].ratios' lists 0.4 twice (methods[0].ratios[0] and methods[0].ratios[1])",
    ),
    (
        {"methods": [{**UNIFORM, "label": "A"}, {"method": "l1"}, {**UNIFORM, "label": "B"}]},
        "methods[0] and methods[2] are the same runs (uniform, same options; e.g. uniform resnet20 ratio=0.5 recipe=kd "
        "seed=0); labels 'A' and 'B' would share one run directory and one label would vanish from the outputs; remove "
        "one or change an option",
    ),
    (
        {"methods": [UNIFORM, {**UNIFORM, "options": {}}]},
        "methods[0] and methods[1] are the same runs (uniform, same options, same label 'uniform'; e.g. uniform "
        "resnet20 ratio=0.5 recipe=kd seed=0): each would count twice; remove one",
    ),
    (
        {"recipes": [{"name": "kd", "epochs": 2}, {"name": "kd", "epochs": 2}]},
        "methods[0] gives the run uniform resnet20 ratio=0.5 recipe=kd seed=0 twice (two identical recipes?); remove "
        "the duplicate",
    ),
]


@pytest.mark.parametrize("changes,message", DUPLICATES, ids=[m[:40] for _, m in DUPLICATES])
def test_a_run_given_twice_is_refused(capsys, tmp_path, changes, message):
    path = tmp_path / "s.yaml"
    path.write_text(spec_text(**changes))
    assert_one_line_error(capsys, ["sweep", str(path), "--dry-run"], f"sweep spec '{path}': {message}")


def test_runs_that_differ_in_an_option_or_recipe_are_not_duplicates(capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        spec_text(
            methods=[{**UNIFORM, "label": "A"}, {**UNIFORM, "label": "B", "options": {"tolerance": 0.05}}],
            recipes=[{"name": "kd", "epochs": 2}, {"name": "kd", "epochs": 3}],
        )
    )
    from tasbench.runner.spec import load_sweep

    runs = load_sweep(path).runs
    assert len(runs) == 8 and len({cfg.directory("r") for cfg in runs}) == 8

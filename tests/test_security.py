"""Nothing untrusted is executed and no name from a config or a results file escapes its directory.

Malicious checkpoints, CIFAR batches and YAML tags are rows of test_bad_files.py (each also checks that its payload
did not run); here: path names, and a scan of the source for the calls that would execute or unpickle input.
"""

import json
import re
from pathlib import Path

import pytest

from tasbench.errors import ConfigError
from tasbench.runner.store import run_dir

from helpers import assert_one_line_error

REPO = Path(__file__).parents[1]
SOURCES = sorted(p for d in ("tasbench", "tas", "baselines", "benchmarks") for p in (REPO / d).rglob("*.py"))
SOURCES += [REPO / "noxfile.py"]


@pytest.mark.parametrize("kind", ["../escape", "..", "/etc", "a/../../b", ".hidden", "", "tas\0x", "x" * 101])
def test_a_run_directory_cannot_escape_the_results_root(kind):
    with pytest.raises(ConfigError, match="cannot name a file or directory"):
        run_dir("runs", kind, {"a": 1})


def test_run_directories_are_plain_names_under_the_root():
    path = run_dir("runs", "tas", {"a": 1})
    assert path.parent == Path("runs/tas") and re.fullmatch(r"[0-9a-f]{12}", path.name)


def test_names_read_from_results_files_cannot_place_a_report_elsewhere(capsys, tmp_path):
    """A tampered metrics.json (network '../../escaped') must not make `tas-bench report` write outside --out."""
    from test_report import fake_run

    run = fake_run(tmp_path / "runs", "Uniform", 0.5, 0, 90.0, 60_000_000, network="../../escaped")
    out = tmp_path / "deep" / "er" / "results"
    assert_one_line_error(
        capsys,
        ["report", "--runs", str(tmp_path / "runs"), "--out", str(out)],
        "network '../../escaped' cannot name a file or directory",
    )
    assert not list(tmp_path.rglob("*escaped*"))
    assert json.loads((run / "metrics.json").read_text())["top1"] == 90.0


# (pattern, why it is forbidden); a line may opt out with a comment naming the reason, none does today.
FORBIDDEN = [
    (r"shell\s*=\s*True", "a shell string can be built from user input"),
    (r"\bos\.(system|popen|exec\w*|spawn\w*)\(", "runs a command through a shell or replaces the process"),
    (r"(?<![.\w])(eval|exec)\(", "executes text as code"),
    (r"yaml\.(load|unsafe_load|full_load)\(", "YAML tags can construct arbitrary objects; use yaml.safe_load"),
    (r"torch\.load\((?![^)]*weights_only=True)", "unpickles arbitrary objects; use weights_only=True"),
    (r"\bpickle\.loads?\(", "unpickles arbitrary objects (cifar.py uses an allow-list Unpickler instead)"),
]


@pytest.mark.parametrize("pattern,why", FORBIDDEN, ids=[w.split(";")[0][:30] for _, w in FORBIDDEN])
def test_no_call_that_executes_input(pattern, why):
    hits = [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in SOURCES
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(pattern, line) and not line.lstrip().startswith("#")
    ]
    assert not hits, f"{why}:\n" + "\n".join(hits)


def test_the_scan_finds_what_it_looks_for():
    """The patterns match the calls they forbid (a scan that matches nothing proves nothing)."""
    bad = [
        "subprocess.run(cmd, shell=True)",
        "os.system('x')",
        "eval(text)",
        "yaml.load(f)",
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "pickle.loads(b)",
    ]
    good = ["yaml.safe_load(f)", "torch.load(path, map_location='cpu', weights_only=True)", "model.eval()"]
    assert all(any(re.search(p, line) for p, _ in FORBIDDEN) for line in bad)
    assert not any(re.search(p, line) for p, _ in FORBIDDEN for line in good)

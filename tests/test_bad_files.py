"""Bad input files through the CLI: sweep specs, TAS .config imports, data directories, checkpoints, results roots.

Each row makes one malformed input, runs `tas-bench` on it in-process, and expects exit status 2, one stderr line
naming the bad value (the file) and what is wrong, and no traceback (see helpers.assert_one_line_error). The
command-line tables of test_cli.py and test_tas_cli.py cover names, numbers and options; this one covers files.
Every malicious payload below would create `pwned` in the test's directory; no row may let it run.
"""

import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_report import fake_run

from tasbench import testing
from tasbench.checkpoint import save_model
from tasbench.presets import resnet20
from tasbench.resnet import build_resnet

from conftest import OFFICIAL_CONFIGS
from helpers import assert_one_line_error

RESNET20_CONFIG = OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C010-ResNet20")].read_text()
SPEC = "networks: [resnet20]\nmethods: [{method: uniform}]\nratios: [0.5]\n"


class Payload:
    """Unpickling this runs a shell command that creates the file `pwned`."""

    def __init__(self, directory):
        self.marker = str(directory / "pwned")

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def text(content: str, name: str):
    def make(d):
        (d / name).write_text(content)
        return d / name

    return make


def raw(content: bytes, name: str):
    def make(d):
        (d / name).write_bytes(content)
        return d / name

    return make


def directory(d):
    (d / "folder").mkdir()
    return d / "folder"


def config(pattern: str, replacement: str):
    """The official C010-ResNet20.config with one regex substitution."""
    edited = re.sub(pattern, replacement, RESNET20_CONFIG, count=1)
    assert edited != RESNET20_CONFIG
    return text(edited, "edited.config")


def cifar10(**batch_overrides):
    """A small CIFAR-10 directory in the real format, with batch files replaced by `name=batch dict` (or bytes)."""

    def make(d):
        images = torch.zeros((20, 3, 32, 32), dtype=torch.uint8)
        base = testing.write_cifar(
            "cifar10", d, {"train": (images, torch.arange(20) % 10), "test": (images[:10], torch.arange(10))}
        )
        for name, batch in batch_overrides.items():
            batch = batch(d) if callable(batch) else batch
            (base / name).write_bytes(batch if isinstance(batch, bytes) else testing.python2_pickle(batch))
        return d

    return make


def cifar100_dir(d):
    images = torch.zeros((100, 3, 32, 32), dtype=torch.uint8)
    testing.write_cifar("cifar100", d, {"train": (images, torch.arange(100)), "test": (images, torch.arange(100))})
    return d


def model_file(edit=None):
    """A ResNet-20 model file as `save_model` writes it, with `edit(checkpoint dict)` applied."""

    def make(d):
        arch = resnet20()
        save_model(d / "model.pt", arch, build_resnet(arch))
        if edit is not None:
            ckpt = torch.load(d / "model.pt", weights_only=True)
            edit(ckpt)
            torch.save(ckpt, d / "model.pt")
        return d / "model.pt"

    return make


def truncated_model(d):
    path = model_file()(d)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def malicious_model(d):
    torch.save({"format": "tas-bench-model/1", "arch": {}, "state_dict": {}, "x": Payload(d)}, d / "evil.pt")
    return d / "evil.pt"


def under_a_file(d):
    (d / "plain-file").write_text("not a directory")
    return d / "plain-file" / "runs"


PAPER_HEADER = "dataset,network,method,pruned_acc,acc_drop,flops,flops_pruned_pct,source,note\n"


def results_root(damage=None):
    """A results root with one finished run (`run` is its directory), then `damage(run)` applied."""

    def make(d):
        run = fake_run(d / "runs", "Uniform", 0.5, 0, 91.0, 62_000_000)
        if damage is not None:
            damage(run)
        return d / "runs"

    return make


def edit(**changes):
    def apply(ckpt):
        for key, value in changes.items():
            if isinstance(value, dict):
                ckpt[key].update(value)
            else:
                ckpt[key] = value

    return apply


def drop_state(ckpt):
    del ckpt["state_dict"]


SWEEP = ["sweep", "{f}", "--dry-run"]
CONFIG = ["flops", "--tas-config", "{f}"]
CIFAR10 = ["train", "--dataset", "cifar10", "--data-dir", "{f}", "--epochs", "1"]
WEIGHTS = ["prune", "--method", "l1", "--ratio", "0.5", "--weights", "{f}"]
PAPER = ["report", "--paper", "{f}"]  # read before any run, so no --runs is needed
REPORT = ["report", "--runs", "{f}", "--paper", "none"]

BAD_FILES = [
    # sweep specs
    (SWEEP, raw(b"name: x\n\xff\xfe\n", "s.yaml"), "sweep spec '{f}' is not UTF-8 text (byte 8); save it as UTF-8"),
    (SWEEP, text("", "s.yaml"), "sweep spec '{f}' is empty; expected a mapping of keys"),
    (SWEEP, directory, "sweep spec '{f}' is a directory, not a YAML file"),
    (SWEEP, text(SPEC.replace("[resnet20]", "resnet20"), "s.yaml"), "'networks' must be a list, got 'resnet20'"),
    (SWEEP, text(SPEC + "teacher: {epochs: two}\n", "s.yaml"), "teacher.epochs must be int, got 'two'"),
    (SWEEP, text(SPEC + "seeds: [1.5]\n", "s.yaml"), "'seeds' holds 1.5, not an int"),
    (
        SWEEP,
        text(SPEC.replace("uniform}", "uniform, colour: red}"), "s.yaml"),
        "unknown key 'colour' in methods[0]; allowed: method, label, options",
    ),
    (SWEEP, text(SPEC.replace("[0.5]", "[-0.5]"), "s.yaml"), "ratios[0]: FLOP ratio -0.5 is outside (0, 1]"),
    (SWEEP, text(SPEC.replace("[0.5]", "[.nan]"), "s.yaml"), "ratios[0]: FLOP ratio nan is outside (0, 1]"),
    (
        SWEEP,
        text(SPEC.replace("uniform", "../../tmp/x"), "s.yaml"),
        "unknown pruning method '../../tmp/x'; allowed: fpgm, l1, ",
    ),  # whatever else is registered
    (SWEEP, text(SPEC + "shortcut: option-c\n", "s.yaml"), "unknown shortcut 'option-c'; allowed: official, zero-pad"),
    (
        SWEEP,
        text(SPEC + "data: {dataset: cifar10, subset: -3}\n", "s.yaml"),
        "data: subset must be in [0, 100000000] (0 = all), got -3",
    ),
    (
        SWEEP,
        text("!!python/object/apply:os.system [touch pwned]\n", "s.yaml"),
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    # official TAS .config imports
    (CONFIG, text(RESNET20_CONFIG[:200], "t.config"), "TAS config file '{f}': not valid JSON (Unterminated string"),
    (CONFIG, config('"xchannels"', '"xchannel"'), "TAS config file '{f}': missing field 'xchannels'"),
    (CONFIG, text(" \n", "t.config"), "TAS config file '{f}': the file is empty"),
    (CONFIG, raw(b"\xff\xfe{}", "t.config"), "TAS config file '{f}' is not UTF-8 text"),
    (CONFIG, directory, "TAS config file '{f}' is a directory, not a .config file"),
    (
        CONFIG,
        config(r'("xchannels"\s*:\s*\["int"\s*,\s*\[)', r'\1"3", '),
        "xchannels has 21 entries; layers=[3, 3, 3] with basic blocks needs 20",
    ),
    (
        CONFIG,
        config(r'("depth"\s*:\s*\[\s*"int"\s*,\s*)"20"', r'\1"21"'),
        "depth 21 does not fit ResNetBasicblock (depth must be 6n + 2, n >= 1)",
    ),
    (
        CONFIG,
        config(r'("xblocks"\s*:\s*\[\s*"int"\s*,\s*\[)"3"', r'\1"three"'),
        "field 'xblocks' must be a non-empty list of integers, got ['three',",
    ),
    (
        CONFIG,
        config(r'("class_num"\s*:\s*\[\s*"int"\s*,\s*)"10"', r'\1"0"'),
        "num_classes must be a positive int, got 0",
    ),
    # data directories
    (CIFAR10, under_a_file, "data directory '{f}' does not exist"),
    (CIFAR10, lambda d: under_a_file(d).parent, "data directory '{f}' is a file, not a directory"),
    (
        CIFAR10,
        cifar10(data_batch_4=b""),
        "data_batch_4' is corrupt: not a readable pickle (EOFError: Ran out of input)",
    ),
    (
        CIFAR10,
        cifar10(data_batch_3={"data": np.zeros((4, 1024), np.uint8), "labels": [0, 1, 2, 3]}),
        "data_batch_3' is corrupt: 'data' is a uint8 array of shape (4, 1024), expected uint8 (N, 3072)",
    ),
    (
        CIFAR10,
        cifar10(data_batch_2={"data": np.zeros((4, 3072), np.float32), "labels": [0, 1, 2, 3]}),
        "data_batch_2' is corrupt: 'data' is a float32 array of shape (4, 3072), expected uint8 (N, 3072)",
    ),
    (
        CIFAR10,
        cifar10(test_batch={"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}),
        "test_batch' is corrupt: labels span 0..10, expected 0..9",
    ),
    (
        CIFAR10,
        cifar10(data_batch_1={"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 99]}),
        "data_batch_1' is corrupt: it has no 'labels' key (keys: data, fine_labels); its 'fine_labels' say it is the "
        "other CIFAR",
    ),
    (
        CIFAR10,
        cifar10(data_batch_5=lambda d: pickle.dumps(Payload(d), protocol=2)),
        "data_batch_5' is corrupt: not a readable pickle (UnpicklingError: refusing to load posix.system)",
    ),
    (CIFAR10, cifar100_dir, "data directory '{f}' holds CIFAR-100 (cifar-100-python/), not CIFAR-10"),
    (
        ["train", "--dataset", "cifar100", "--data-dir", "{f}", "--epochs", "1"],
        cifar10(),
        "data directory '{f}' holds CIFAR-10 (cifar-10-batches-py/), not CIFAR-100",
    ),
    (
        ["train", "--dataset", "imagenet", "--network", "resnet18", "--data-dir", "{f}", "--epochs", "1"],
        directory,
        "ImageNet folder '{f}/train' does not exist; expected {f}/train/<class>/*.JPEG",
    ),
    # checkpoints
    (WEIGHTS, truncated_model, "checkpoint '{f}' is truncated or not a PyTorch file"),
    (WEIGHTS, raw(b"", "m.pt"), "checkpoint '{f}' is truncated or not a PyTorch file"),
    (WEIGHTS, text("model weights, honest", "m.pt"), "checkpoint '{f}' is truncated or not a PyTorch file"),
    (WEIGHTS, directory, "checkpoint '{f}' is a directory, not a checkpoint file"),
    (
        WEIGHTS,
        malicious_model,
        "checkpoint '{f}' is not a plain tensor checkpoint; refusing to unpickle it (it would import posix.system)",
    ),
    (WEIGHTS, lambda d: torch.save([1, 2], d / "l.pt") or d / "l.pt", "checkpoint '{f}' holds a list, expected a dict"),
    (
        WEIGHTS,
        lambda d: torch.save({"model": {}}, d / "o.pt") or d / "o.pt",
        "weights file '{f}' is neither a tas-bench model file nor a torchvision ResNet state_dict",
    ),
    (  # torchvision-like keys, but not a ResNet's stages
        WEIGHTS,
        lambda d: torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, d / "t.pt") or d / "t.pt",
        "a torchvision ResNet has stages layer1..layer4, these weights have []",
    ),
    (
        WEIGHTS,
        model_file(edit(state_dict={"stem.conv.weight": torch.zeros(8, 3, 3, 3)})),
        "model file '{f}': weights do not fit this network ('stem.conv.weight' is (8, 3, 3, 3), the network has "
        "(16, 3, 3, 3))",
    ),
    (
        WEIGHTS,
        model_file(edit(arch={"xchannels": [3, 16]})),
        "model file '{f}': xchannels has 2 entries; layers=[3, 3, 3] with basic blocks needs 20",
    ),
    (WEIGHTS, model_file(edit(arch={"family": "vgg"})), "model file '{f}': unknown family 'vgg'; allowed: cifar"),
    (WEIGHTS, model_file(drop_state), "model file '{f}': 'state_dict' is NoneType, expected a dict of tensors"),
    (
        ["train", "--teacher", "{f}", "--epochs", "1"],
        malicious_model,
        "checkpoint '{f}' is not a plain tensor checkpoint; refusing to unpickle it",
    ),
    # the paper's numbers and results roots that `report` reads
    (PAPER, text(PAPER_HEADER.replace(",note", ""), "p.csv"), "paper results '{f}' lack column 'note'; expected ["),
    (
        PAPER,
        text(PAPER_HEADER + "cifar10,resnet20,TAS,92.88,0.00,lots,45.0,recalled,\n", "p.csv"),
        "paper results '{f}', line 2: flops 'lots' is not a number",
    ),
    (
        PAPER,
        text(PAPER_HEADER + "cifar10,resnet20,TAS,92.88,0.00,,45.0,recalled,\n", "p.csv"),
        "paper results '{f}', line 2: no flops (every paper row needs its FLOPs)",
    ),
    (PAPER, raw(b"\xff\xfe\x00", "p.csv"), "paper results '{f}' are not a readable CSV file ('utf-8' codec can't"),
    (PAPER, text("", "p.csv"), "paper results '{f}' are not a readable CSV file (No columns to parse from file)"),
    (PAPER, directory, "paper results '{f}' is a directory; give the CSV file (or --paper none)"),
    (
        REPORT,
        results_root(lambda run: (run / "metrics.json").write_text("{")),
        "metrics.json' is damaged: truncated (it ends mid-value at byte 1); skipped (its sweep recomputes it",
    ),
    (
        REPORT,
        results_root(lambda run: (run / "params.json").unlink()),
        "params.json' is missing; skipped (its sweep recomputes it, keeping it aside)",
    ),
    (
        REPORT,
        results_root(lambda run: (run / "params.json").write_text("[1, 2]")),
        "params.json' is not a tas-bench run file: holds a JSON array, expected an object; skipped",
    ),
    (
        REPORT,
        results_root(lambda run: (run / "metrics.json").write_text('{"teacher_hash": "t", "dataset": "x"}')),
        "metrics.json' is not a tas-bench run file: lacks 'network'; skipped",
    ),
    (REPORT, lambda d: under_a_file(d).parent, "results root '{f}' is a file, not a directory"),
    (REPORT, directory, "no finished runs under '{f}'; run `tas-bench sweep SPEC --out {f}` first"),
    # results roots that cannot be written (an unwritable --out is not a bad file, but has one clear line too)
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--save", "{f}/m.pt"],
        under_a_file,
        "--save '{f}/m.pt' lies under '",
    ),
]


@pytest.mark.parametrize("argv,make,message", BAD_FILES, ids=[m[:40] for _, _, m in BAD_FILES])
def test_a_bad_file_is_one_clear_line(capsys, monkeypatch, tmp_path, argv, make, message):
    monkeypatch.chdir(tmp_path)  # a payload that escaped would write here
    path = str(make(tmp_path))
    argv = [a.format(f=path) for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "out")]
    assert_one_line_error(capsys, argv, message.format(f=path))
    assert not (tmp_path / "pwned").exists()


def test_a_malicious_checkpoint_is_refused_by_the_console_script(tmp_path):
    """The same as the table's row, as a real process: exit status 2, one line, and the payload never ran."""
    evil = malicious_model(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tasbench.cli", *[a.format(f=evil) for a in WEIGHTS]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "refusing to unpickle it (it would import posix.system)" in result.stderr
    assert not (tmp_path / "pwned").exists()
    # and unpickled without the guard, the same file does run its payload: the test can tell
    torch.load(evil, weights_only=False)
    assert (tmp_path / "pwned").exists()

"""Pretrained teachers: a teacher from a file instead of training (`teacher: {weights: PATH}`, `--teacher-weights`).

torchvision's own `resnet18()`/`resnet50()` state_dicts load onto our builder (shortcut "torchvision") with equal
logits; a tas-bench model file works for any net; the file's content hash enters the teacher's and every run's
hash; a sweep imports the teacher (evaluates it) and trains none."""

import json
from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from runner_helpers import LATENCY, TINY_SPEC, write_spec

from tasbench.checkpoint import save_model
from tasbench.errors import ConfigError
from tasbench.flops import macs, params
from tasbench.presets import resnet18, resnet20, resnet50, resnet56
from tasbench.pretrained import load_teacher
from tasbench.resnet import seeded_resnet
from tasbench.runner.spec import load_sweep

from helpers import assert_one_line_error, run_cli


def torchvision_file(directory: Path, make, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """torchvision's net with random weights and BN statistics (a fresh net's are 0/1: they would hide a swap)."""
    torch.manual_seed(seed)
    net = make().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    path = directory / f"{make.__name__}-{seed}.pth"
    torch.save(net.state_dict(), path)
    return path, net


@pytest.mark.parametrize(
    "make, ours", [(torchvision.models.resnet18, resnet18), (torchvision.models.resnet50, resnet50)]
)
def test_torchvision_weights_give_equal_logits(tmp_path, make, ours):
    path, reference = torchvision_file(tmp_path, make)
    arch, model = load_teacher(path)
    assert arch == ours(shortcut="torchvision")
    assert params(arch) == sum(p.numel() for p in reference.parameters())
    assert macs(arch) == macs(ours())  # the strided 1x1 conv costs what the official pool-then-conv costs
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference(x))


def test_a_teacher_file_must_be_the_net_the_runs_prune(tmp_path):
    path, _ = torchvision_file(tmp_path, torchvision.models.resnet18)
    with pytest.raises(ConfigError, match="need an ImageNet net with shortcut 'torchvision'"):
        load_teacher(path, resnet18())
    with pytest.raises(ConfigError, match="holds a imagenet basic ResNet .* the runs need a imagenet bottleneck"):
        load_teacher(path, resnet50(shortcut="torchvision"))
    ours = tmp_path / "r20.pt"
    save_model(ours, resnet20(), seeded_resnet(resnet20(), 0))
    assert load_teacher(ours, resnet20())[0] == resnet20()
    with pytest.raises(ConfigError, match="blocks \\[3, 3, 3\\] .* the runs need .* blocks \\[9, 9, 9\\]"):
        load_teacher(ours, resnet56())
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(ConfigError, match="neither a tas-bench model file nor a torchvision ResNet state_dict"):
        load_teacher(foreign)
    state = torch.load(path, weights_only=True)
    state["layer2.0.conv1.weight"] = torch.zeros(7, 64, 3, 3)  # a width that is not resnet18's
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="layer2|stages.1.0.convs.0.weight"):
        load_teacher(tmp_path / "bad.pth")


def test_a_sweep_imports_its_teacher_and_hashes_the_file(tmp_path, capsys, one_thread):
    """A proxy sweep whose teacher is a tas-bench model file: nothing trains (train_seconds 0, no log.csv), the
    runs distil from exactly that net, and another file's bytes give other run directories."""
    teacher_file = tmp_path / "teacher.pt"
    save_model(teacher_file, resnet20(), seeded_resnet(resnet20(), 7))
    spec = write_spec(tmp_path, teacher={"weights": str(teacher_file)}, ratios=[0.5])
    code, out, err = run_cli(capsys, "sweep", str(spec), "--out", str(tmp_path / "runs"), *LATENCY, "--dry-run")
    assert code == 0 and "0 teachers to train, 1 to import from their files" in err and "teacher from" in err
    code, out, err = run_cli(capsys, "sweep", str(spec), "--out", str(tmp_path / "runs"), *LATENCY)
    assert code == 0, err
    (teacher_dir,) = (tmp_path / "runs" / "train").glob("[!.]*")
    metrics = json.loads((teacher_dir / "metrics.json").read_text())
    assert metrics["train_seconds"] == 0 and not (teacher_dir / "log.csv").exists()
    assert metrics["weights"]["path"] == str(teacher_file)
    _, imported = load_teacher(teacher_dir / "model.pt")
    _, original = load_teacher(teacher_file)
    assert all(torch.equal(a, b) for a, b in zip(imported.state_dict().values(), original.state_dict().values()))
    run = json.loads(next((tmp_path / "runs" / "uniform").glob("*/metrics.json")).read_text())
    assert run["teacher_sha256"]  # the run records the teacher it distilled from
    before = load_sweep(spec).runs[0]
    save_model(teacher_file, resnet20(), seeded_resnet(resnet20(), 8))  # other bytes at the same path
    after = load_sweep(spec).runs[0]
    assert after.directory("r") != before.directory("r") and after.teacher_directory("r") != before.teacher_directory(
        "r"
    )
    trained = load_sweep(write_spec(tmp_path, ratios=[0.5])).runs[0]
    assert trained.teacher_directory("r") != after.teacher_directory("r")


def test_bad_teacher_weights_in_a_spec_are_one_line(tmp_path, capsys):
    cases = [
        ({"weights": str(tmp_path / "missing.pt")}, "missing.pt"),
        ({"weights": {"resnet99": "x.pt"}}, "unknown network in teacher.weights 'resnet99'"),
        ({"weights": 3}, "teacher.weights must be a path or a mapping network -> path"),
    ]
    for teacher, message in cases:
        spec = write_spec(tmp_path, teacher=teacher)
        assert_one_line_error(capsys, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "r")], message)


@pytest.mark.slow
def test_an_imagenet_dry_run_with_torchvision_teachers_trains_none(tmp_path, capsys):
    """The shipped imagenet spec pointed at torchvision ResNet-18/50 files (as on disk after torchvision's own
    download): 2 teachers imported, none trained, the teacher phase costs one evaluation each."""
    from PIL import Image

    for split in ("train", "val"):
        folder = tmp_path / "imagenet" / split / "n01440764"
        folder.mkdir(parents=True)
        Image.new("RGB", (64, 48)).save(folder / "a.JPEG")
    r18, _ = torchvision_file(tmp_path, torchvision.models.resnet18)
    r50, _ = torchvision_file(tmp_path, torchvision.models.resnet50)
    weights = yaml.safe_dump({"resnet18": str(r18), "resnet50": str(r50)}, default_flow_style=True).strip()
    argv = ["sweep", "imagenet", "--data-dir", str(tmp_path / "imagenet"), "--out", str(tmp_path / "runs")]
    argv += ["--set", "shortcut=torchvision", "--set", f"teacher.weights={weights}", "--dry-run"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "0 teachers to train, 2 to import from their files, 0 to reuse" in err
    assert "teacher   2 nets" in err and err.count("teacher from") == out["runs"]
    assert TINY_SPEC["teacher"]  # the tiny spec is untouched by the override

"""The `tas-bench` command: JSON on stdout, and for bad input one error line and exit status 2."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tasbench import testing
from tasbench.checkpoint import load_model, save_model
from tasbench.cli import main
from tasbench.flops import macs
from tasbench.official_config import read_tas_config
from tasbench.presets import PRESETS
from tasbench.resnet import build_resnet
from tasbench.runner.code_identity import code_identity

from conftest import COMPARE_CONFIGS, OFFICIAL_CONFIGS
from helpers import assert_one_line_error
from helpers import run_cli as run


def test_flops_of_a_preset(capsys):
    code, out, _ = run(capsys, "flops", "--network", "resnet56", "--dataset", "cifar10", "--json")
    assert code == 0 and (out["macs"], out["params"]) == (125_747_850, 855_578)  # the release's ResNet-56
    assert (out["macs_unpruned"], out["params_unpruned"], out["flop_ratio"]) == (125_747_850, 855_578, 1.0)
    code, out, _ = run(capsys, "flops", "--network", "resnet56", "--shortcut", "zero-pad", "--json")
    assert out["macs"] == 125_485_706 and out["dataset"] == "cifar10"
    code, out, _ = run(capsys, "flops", "--network", "resnet56", "--dataset", "cifar100", "--json")
    assert out["macs"] == 125_747_850 + 64 * 90 + 90  # 90 more classes: their classifier weights and biases
    code, out, _ = run(capsys, "flops", "--network", "resnet50", "--json")
    assert out["dataset"] == "imagenet" and out["macs"] == 4_089_185_256


def test_flops_of_a_released_shape(capsys):
    path = OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C100-ResNet56")]
    code, out, _ = run(capsys, "flops", "--tas-config", str(path), "--json")
    assert code == 0 and out["dataset"] == "cifar100" and (out["macs"], out["params"]) == (61_233_936, 470_977)
    assert out["macs_unpruned"] == 125_747_850 + 64 * 90 + 90 and out["flop_ratio"] == 61_233_936 / 125_753_700


# `tas-bench flops --tas-config` on every file of official_configs/compares/: (dataset, MACs, params, MFLOPs).
COMPARES = {
    "CIFAR010-TAS-R110": ("cifar10", 119_259_268, 795_864, 119.26),
    "CIFAR010-TAS-R56": ("cifar10", 59_451_400, 441_494, 59.45),  # the paper's CIFAR-10 ResNet-56 row
    "CIFAR100-FIX-R32": ("cifar100", 41_095_916, 288_773, 41.10),
    "CIFAR100-RAND-R32": ("cifar100", 42_909_096, 336_406, 42.91),
    "CIFAR100-TAS-R110": ("cifar100", 119_578_384, 843_653, 119.58),
    "CIFAR100-TAS-R32": ("cifar100", 42_493_284, 427_362, 42.49),
    "CIFAR100-TAS-R56": ("cifar100", 61_233_936, 470_977, 61.23),
}


@pytest.mark.parametrize("path", COMPARE_CONFIGS, ids=lambda p: p.stem)
def test_flops_of_the_compared_shapes(capsys, path):
    code, out, _ = run(capsys, "flops", "--tas-config", str(path), "--json")
    dataset, n_macs, n_params, mflops = COMPARES[path.stem]
    assert code == 0 and (out["dataset"], out["macs"], out["params"]) == (dataset, n_macs, n_params)
    assert round(out["macs"] / 1e6, 2) == mflops


def test_prune_uniform(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "prune",
        "--method",
        "uniform",
        "--network",
        "resnet56",
        "--dataset",
        "cifar10",
        "--ratio",
        "0.5",
        "--save",
        str(tmp_path / "p.pt"),
    )
    assert code == 0
    assert (out["macs_unpruned"], out["params_unpruned"]) == (125_747_850, 855_578)
    assert abs(out["macs"] / out["macs_unpruned"] - 0.5) <= 0.005 and out["params"] < out["params_unpruned"]
    arch, model = load_model(tmp_path / "p.pt")
    assert arch.to_dict() == out["arch"] and macs(arch) == out["macs"]
    code, again, _ = run(
        capsys,
        "prune",
        "--method",
        "uniform",
        "--network",
        "resnet56",
        "--ratio",
        "0.5",
        "--save-tas-config",
        str(tmp_path / "p.config"),
    )
    assert again["arch"] == out["arch"]
    code, counted, _ = run(capsys, "flops", "--tas-config", str(tmp_path / "p.config"), "--json")
    assert counted["macs"] == out["macs"] and counted["arch"] == out["arch"]


def test_prune_trained_weights(capsys, tmp_path):
    full = PRESETS["resnet20"]()
    save_model(tmp_path / "full.pt", full, build_resnet(full))
    code, out, err = run(
        capsys,
        "prune",
        "--method",
        "l1",
        "--weights",
        str(tmp_path / "full.pt"),
        "--ratio",
        "0.3",
        "--opt",
        "tolerance=0.005",
    )
    assert code == 0 and out["options"] == {"variant": "", "scope": "internal", "tolerance": 0.005} and err == ""
    assert abs(out["macs"] / (0.3 * macs(full)) - 1) <= 0.005


def test_prune_l1_variant_b(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "prune",
        "--method",
        "l1",
        "--network",
        "resnet56",
        "--shortcut",
        "zero-pad",
        "--opt",
        "variant=B",
        "--save",
        str(tmp_path / "b.pt"),
    )
    assert code == 0 and out["ratio"] is None and out["options"]["variant"] == "B"
    assert err == (
        "tas-bench: warning: --method l1 pruned a freshly initialised resnet56 (--seed 0), not a trained "
        "net; give --weights MODEL.pt to prune a trained one\n"
    )
    assert (out["macs"], out["macs_unpruned"]) == (90_907_274, 125_485_706)  # Li et al.: 9.09E7, -27.6%
    arch, _ = load_model(tmp_path / "b.pt")
    assert macs(arch) == out["macs"] and len(out["info"]["kept"]["stages.0.0.convs.0"]) == 6


@pytest.mark.parametrize("method", ["l1", "fpgm"])
def test_prune_baselines_from_trained_weights(capsys, tmp_path, method):
    full = PRESETS["resnet20"]()
    save_model(tmp_path / "full.pt", full, build_resnet(full))
    code, out, err = run(
        capsys,
        "prune",
        "--method",
        method,
        "--weights",
        str(tmp_path / "full.pt"),
        "--ratio",
        "0.4",
        "--save",
        str(tmp_path / "p.pt"),
    )
    assert code == 0 and abs(out["macs"] / (0.4 * macs(full)) - 1) <= 0.01 and err == ""  # no fresh-init warning
    assert out["info"]["inherits_weights"] is True and load_model(tmp_path / "p.pt")[0].to_dict() == out["arch"]


@pytest.mark.parametrize("method", ["fpgm", "sfp"])
def test_prune_soft_modes_train_on_the_named_data(capsys, method):
    code, out, err = run(
        capsys,
        "prune",
        "--method",
        method,
        "--network",
        "resnet20",
        "--ratio",
        "0.5",
        "--dataset",
        "proxy",
        "--proxy-train",
        "128",
        "--proxy-test",
        "64",
        "--opt",
        "mode=soft",
        "--opt",
        "epochs=1",
        "--opt",
        "batch_size=64",
        "--device",
        "cpu",
    )
    assert code == 0 and out["info"]["mode"] == "soft" and out["info"]["soft_training"]["epochs"] == 1
    assert abs(out["flop_ratio"] / 0.5 - 1) <= 0.01
    # the soft training's progress bar, then one warning line
    assert "train: 100%" in err and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"tas-bench: warning: --method {method} pruned a freshly initialised")


def test_flops_prints_a_summary_and_json_on_request(capsys):
    path = OFFICIAL_CONFIGS[[p.stem for p in OFFICIAL_CONFIGS].index("C010-ResNet56")]
    assert main(["flops", "--tas-config", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: cifar10, official shortcut\n"
        "  MACs        59,858,440  (59.86 M)  47.6% of the unpruned resnet56 (125,747,850)\n"
        "  params         449,307  (0.45 M)  52.5% of the unpruned resnet56 (855,578)\n"
    )
    assert main(["flops", "--network", "resnet56", "--shortcut", "zero-pad"]) == 0
    assert capsys.readouterr().out == (
        "resnet56: cifar10, zero-pad shortcut\n"
        "  MACs       125,485,706  (125.49 M)\n"
        "  params         853,018  (0.85 M)\n"
    )
    assert main(["flops", "--tas-config", str(path), "--json"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert counted["arch"] == read_tas_config(path).to_dict() and counted["macs"] == 59_858_440
    assert list(counted) == [
        "network",
        "dataset",
        "shortcut",
        "macs",
        "params",
        "macs_unpruned",
        "params_unpruned",
        "flop_ratio",
        "arch",
    ]


@pytest.fixture
def corrupt_cifar(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=g)
    base = testing.write_cifar(
        "cifar10", tmp_path, {"train": (images, torch.arange(20) % 10), "test": (images[:10], torch.arange(10))}
    )
    (base / "data_batch_2").write_bytes(b"\x80\x02}q\x00(U\x04data")  # cut off mid-way
    return tmp_path


@pytest.fixture
def bad_config(tmp_path):
    path = tmp_path / "bad.config"
    path.write_text('{"dataset": ["str", "cifar"], "arch": ["str", "resnet"]}')
    return path


@pytest.fixture
def bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: proxy\nmethods: [{method: uniform}\n")  # the flow list is never closed
    return path


@pytest.fixture
def proxy_spec():
    return Path(__file__).parents[1] / "benchmarks" / "proxy.yaml"


@pytest.fixture
def cifar100_dir(tmp_path):
    """A directory holding CIFAR-100, for a sweep that asks for CIFAR-10: the wrong data set."""
    images = torch.zeros((100, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(100)
    testing.write_cifar("cifar100", tmp_path, {"train": (images, labels), "test": (images, labels)})
    return tmp_path


BAD_INPUT = [
    (["flops", "--network", "resnet57"], "unknown network 'resnet57'; allowed: resnet20, resnet32, resnet56"),
    (["flops", "--network", "resnet56", "--dataset", "mnist"], "unknown dataset 'mnist'; allowed: proxy, cifar10"),
    (["flops", "--network", "resnet56", "--shortcut", "option-b"], "unknown shortcut 'option-b'; allowed: official"),
    (["flops", "--network", "resnet18", "--shortcut", "zero-pad"], "'zero-pad' is defined for CIFAR ResNets only"),
    (["flops", "--network", "resnet50", "--dataset", "cifar10"], "'resnet50' is an imagenet ResNet; for cifar data"),
    (["flops"], "give --network NAME or --tas-config FILE"),
    (["flops", "--tas-config", "{bad_config}"], "TAS config file '{bad_config}': missing field 'class_num'"),
    (["flops", "--tas-config", "/no/such.config"], "TAS config file '/no/such.config' does not exist"),
    (["prune", "--method", "uniform", "--network", "resnet56", "--ratio", "1.5"], "FLOP ratio 1.5 is outside (0, 1]"),
    (["prune", "--method", "uniform", "--network", "resnet56", "--ratio", "0"], "FLOP ratio 0.0 is outside (0, 1]"),
    (["prune", "--method", "uniform", "--network", "resnet56", "--ratio", "half"], "argument --ratio: invalid float"),
    (["prune", "--method", "magic", "--network", "resnet56", "--ratio", "0.5"], "unknown pruning method 'magic'"),
    (
        ["prune", "--method", "uniform", "--network", "resnet56", "--ratio", "0.5", "--opt", "tol=1"],
        "unknown UniformOptions key 'tol'; allowed: tolerance",
    ),
    (
        ["prune", "--method", "l1", "--weights", "/no/model.pt", "--ratio", "0.5"],
        "checkpoint '/no/model.pt' does not exist",
    ),
    (
        ["prune", "--method", "l1", "--network", "resnet56", "--opt", "variant=C"],
        "unknown L1 variant 'C'; allowed: A, B",
    ),
    (
        ["prune", "--method", "fpgm", "--network", "resnet56", "--opt", "variant=A"],
        "unknown FpgmOptions key 'variant'; allowed: mode, scope, tolerance, epochs, lr, batch_size",
    ),
    (
        ["prune", "--method", "l1", "--network", "resnet20", "--opt", "variant=A"],
        "L1 variant 'A' is defined for the full resnet56 and resnet110 only",
    ),
    (
        ["prune", "--method", "l1", "--network", "resnet56", "--opt", "variant=A", "--ratio", "0.5"],
        "give --ratio (a FLOP target) or options that fix the shape, not both: --method l1 with --opt variant=A "
        "fixes it",
    ),
    (
        ["prune", "--method", "l1", "--network", "resnet56"],
        "give --ratio R (a FLOP target in (0, 1]): --method l1 with these options does not fix the shape",
    ),
    (
        ["prune", "--method", "tas", "--network", "resnet56", "--opt", "search=random"],
        "give --ratio R (a FLOP target in (0, 1]): --method tas with these options does not fix the shape",
    ),
    (["prune", "--method", "l1", "--network", "resnet56", "--variant", "B"], "unrecognized arguments: --variant B"),
    (
        ["prune", "--method", "l1", "--network", "resnet56", "--ratio", "0.001"],
        "FLOP ratio 0.001 is below what L1 pruning (scope 'internal') reaches (smallest net: 0.0421)",
    ),
    (
        ["prune", "--method", "fpgm", "--network", "resnet56", "--ratio", "0.5", "--opt", "scope=some"],
        "unknown scope 'some'; allowed: internal, all",
    ),
    (
        ["prune", "--method", "fpgm", "--network", "resnet56", "--ratio", "0.5", "--opt", "mode=gentle"],
        "unknown FPGM mode 'gentle'; allowed: hard, soft",
    ),
    (
        ["prune", "--method", "sfp", "--network", "resnet56", "--ratio", "0.5", "--opt", "mode=gentle"],
        "unknown SFP mode 'gentle'; allowed: hard, soft",
    ),
    (
        ["prune", "--method", "sfp", "--network", "resnet56", "--ratio", "0.5"],
        "dataset 'cifar10' needs --data-dir (the directory that holds it)",
    ),
    (
        ["prune", "--method", "taylor", "--network", "resnet56", "--ratio", "0.5"],
        "dataset 'cifar10' needs --data-dir (the directory that holds it)",
    ),
    (
        ["prune", "--method", "tp", "--network", "resnet56", "--ratio", "0.5", "--shortcut", "zero-pad"],
        "method 'tp' cannot prune shortcut 'zero-pad' (DepGraph does not follow F.pad of channels)",
    ),
    (
        ["prune", "--method", "tp", "--network", "resnet56", "--ratio", "0.5", "--opt", "allocation=local"],
        "unknown Torch-Pruning allocation 'local'; allowed: uniform, global",
    ),
    (
        ["prune", "--method", "sfp", "--network", "resnet56", "--ratio", "0.001", "--opt", "mode=hard"],
        "FLOP ratio 0.001 is below what SFP pruning (scope 'all') reaches (smallest net: 0.0020)",
    ),
    (
        ["train", "--dataset", "cifar10", "--data-dir", "/no/such/dir", "--epochs", "1"],
        "data directory '/no/such/dir' does not exist",
    ),
    (
        ["train", "--dataset", "cifar10", "--data-dir", "{corrupt_cifar}", "--epochs", "1"],
        "CIFAR-10 batch '{corrupt_cifar}/cifar-10-batches-py/data_batch_2' is corrupt: not a readable pickle",
    ),
    (["train", "--epochs", "0"], "epochs must be in [1, 10000], got 0"),
    (["train", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["train", "--device", "tpu"], "unknown device 'tpu'"),
    (["sweep", "{bad_yaml}"], "sweep spec '{bad_yaml}' is not valid YAML at line 3"),
    (["sweep", "/no/such.yaml"], "sweep spec '/no/such.yaml' does not exist"),
    (["sweep", "{proxy_spec}", "--set", "epochs=3"], "unknown key 'epochs'; allowed: name, description, data"),
    (["sweep", "{proxy_spec}", "--set", "methods=[{{method: magic}}]"], "unknown pruning method 'magic'; allowed: "),
    (["sweep", "{proxy_spec}", "--set", "ratios=[0.5, 1.5]"], "ratios[1]: FLOP ratio 1.5 is outside (0, 1]"),
    (["sweep", "{proxy_spec}", "--set", "seeds=[]"], "'seeds' is empty, so the sweep has no runs"),
    (
        ["sweep", "{proxy_spec}", "--set", "data.dataset=cifar10", "--data-dir", "/no/such/dir"],
        "data directory '/no/such/dir' does not exist",
    ),
    (
        ["sweep", "{proxy_spec}", "--set", "data.dataset=cifar10", "--data-dir", "{cifar100_dir}"],
        "data directory '{cifar100_dir}' holds CIFAR-100 (cifar-100-python/), not CIFAR-10; give the directory",
    ),
    (["sweep", "{proxy_spec}", "--executor", "dask"], "unknown executor 'dask'; allowed: local, ray"),
    (["sweep", "{proxy_spec}", "--workers", "0"], "argument --workers: must be in [1, 1024], got 0"),
    (["sweep", "{proxy_spec}", "--threads", "-1"], "argument --threads: must be in [0, 1024], got -1"),
    (
        ["sweep", "{proxy_spec}", "--force", "--rerun-stale"],
        "give --rerun-stale (recompute stale runs) or --force (recompute every run), not both",
    ),
    (["sweep", "{proxy_spec}", "--force", "--rerun-stale", "--dry-run"], "not both: --force already recomputes"),
    (["sweep", "{proxy_spec}", "--rerun-stale=yes"], "argument --rerun-stale: ignored explicit argument 'yes'"),
    (
        ["sweep", "{proxy_spec}", "--fail-fast", "--set", "methods=[{{method: l1, options: {{variant: A}}}}]"],
        "l1 resnet20 ratio=0.7: L1 variant 'A' is defined for the full resnet56 and resnet110 only",
    ),
    (["report", "--runs", "/no/runs"], "results root '/no/runs' does not exist; give the --out of `tas-bench sweep`"),
    (
        ["report", "--runs", "/no/runs", "--paper", "/no/such.csv"],
        "paper results '/no/such.csv' do not exist (tas-bench ships paper-results.csv; --paper none leaves the paper's "
        "rows out)",
    ),
    (["compare", "--wandb-dir", "/no/such"], "W&B directory '/no/such' does not exist"),
    (["compare"], "one of the arguments --wandb-dir --project is required"),
    # the device, the weights a method does not read, shipped specs by name, the flags every long command takes
    (["sweep", "{proxy_spec}", "--device", "bogus"], "unknown device 'bogus'; allowed: auto, cpu, cuda, cuda:N"),
    (
        ["prune", "--method", "uniform", "--network", "resnet20", "--ratio", "0.5", "--device", "gpu"],
        "unknown device 'gpu'; allowed: auto, cpu, cuda, cuda:N",
    ),
    (["bench", "search-step", "--device", "cuda:x"], "unknown device 'cuda:x'; allowed: auto, cpu, cuda, cuda:N"),
    (
        ["prune", "--method", "tas", "--weights", "/no/model.pt", "--ratio", "0.5"],
        "--method tas does not read --weights: it takes the unpruned net's shape only, and its pruned net starts from "
        "a fresh initialisation; give the shape with --network or --tas-config, and use the trained net as the "
        "retraining's teacher (tas-bench train --teacher)",
    ),
    (
        ["prune", "--method", "uniform", "--weights", "/no/model.pt", "--ratio", "0.5"],
        "--method uniform does not read --weights",
    ),
    (
        ["sweep", "cifar1"],
        "sweep spec 'cifar1' does not exist; give a path to a YAML file or a shipped spec: cifar10, "
        "cifar100, cifar100-ablation, imagenet, proxy, regression",
    ),
    (["regress", "--spec", "nosuch"], "sweep spec 'nosuch' does not exist; give a path to a YAML file or a shipped"),
    (["flops", "--network", "resnet20", "--json=yes"], "argument --json: ignored explicit argument 'yes'"),
    (["train", "--no-progress=yes"], "argument --no-progress: ignored explicit argument 'yes'"),
    (
        ["regress", "--no-progress", "--spread-seeds", "1,x", "--update", "--expected", "/no/dir/r.json"],
        "--spread-seeds must be comma-separated ints, got '1,x'",
    ),
    (["bench", "search-step", "--no-progress", "--steps", "0"], "argument --steps: must be in [1, 100000], got 0"),
    (["bench", "search-stop"], "argument benchmark: invalid choice: 'search-stop' (choose from"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[m[:40] for _, m in BAD_INPUT])
def test_bad_input_is_one_clear_line(capsys, tmp_path, request, argv, message):
    fill = {}
    for name in ("bad_config", "corrupt_cifar", "bad_yaml", "proxy_spec", "cifar100_dir"):
        if any("{" + name + "}" in a for a in argv):
            fill[name] = request.getfixturevalue(name)
    argv = [a.format(**fill) for a in argv]
    message = message.format(**fill)
    assert_one_line_error(
        capsys, argv + ["--out", str(tmp_path / "out")] if argv[0] in ("train", "sweep") else argv, message
    )


def test_console_script_exits_2_without_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "tasbench.cli", "flops", "--network", "resnet57"], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("tas-bench: error: unknown network 'resnet57'") and "Traceback" not in result.stderr


SMALL_PROXY = ["--dataset", "proxy", "--proxy-train", "256", "--proxy-test", "128", "--batch-size", "64"]


def test_train_writes_a_resumable_run_directory(capsys, tmp_path):
    argv = ["train", "--network", "resnet20", *SMALL_PROXY, "--epochs", "2", "--out", str(tmp_path), "--no-progress"]
    code, metrics, _ = run(capsys, *argv)
    assert code == 0
    (run_dir,) = [d for d in (tmp_path / "train").iterdir() if d.is_dir()]  # beside it: its lock file
    assert str(run_dir) == metrics["run_dir"]
    assert run_dir.name == json.loads((run_dir / "params.json").read_text())["hash"]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.pt",
        "log.csv",
        "metrics.json",
        "model.pt",
        "params.json",
    ]
    assert len((run_dir / "log.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert metrics["macs"] == 40_813_194 and metrics["environment"]["torch"] == torch.__version__
    assert metrics["code"] == code_identity(("tasbench",))  # plain training runs the engine's code only
    params = json.loads((run_dir / "params.json").read_text())
    assert params["code"] == metrics["code"]
    assert params["config"]["train"]["epochs"] == 2 and params["config"]["data"]["proxy_train"] == 256
    # the same command again finds the finished run and does not train
    code, again, err = run(capsys, *argv)
    assert code == 0 and again == metrics and "already done" in err
    # a different recipe is a different run
    code, other, _ = run(capsys, *argv[:-5], "--epochs", "1", "--out", str(tmp_path), "--no-progress")
    assert other["run_dir"] != metrics["run_dir"]


def test_teacher_prune_and_distil_end_to_end(capsys, tmp_path):
    out = ["--out", str(tmp_path), "--no-progress"]
    _, teacher, _ = run(capsys, "train", "--network", "resnet20", *SMALL_PROXY, "--epochs", "1", *out)
    teacher_file = teacher["run_dir"] + "/model.pt"
    code, pruned, _ = run(
        capsys,
        "prune",
        "--method",
        "l1",
        "--weights",
        teacher_file,
        "--ratio",
        "0.5",
        "--save",
        str(tmp_path / "half.pt"),
    )
    assert code == 0
    code, student, _ = run(
        capsys,
        "train",
        "--weights",
        str(tmp_path / "half.pt"),
        "--teacher",
        teacher_file,
        *SMALL_PROXY,
        "--epochs",
        "1",
        *out,
    )
    assert code == 0 and student["macs"] == pruned["macs"]
    config = json.loads((tmp_path / "train" / student["run_dir"].split("/")[-1] / "params.json").read_text())["config"]
    assert config["distill"] == {"alpha": 0.9, "temperature": 4.0} and len(config["teacher"]) == 64


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_same_weights(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "tasbench.cli",
        "train",
        "--network",
        "resnet20",
        *SMALL_PROXY,
        "--epochs",
        "3",
        "--no-progress",
    ]
    subprocess.run(argv + ["--out", str(tmp_path / "a")], check=True, capture_output=True)
    proc = subprocess.Popen(argv + ["--out", str(tmp_path / "b")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "b" / "train"
    try:
        while proc.poll() is None and not list(checkpoints.glob("*/checkpoint.pt")):
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL, after at least one epoch's checkpoint is on disk
        proc.wait()
    assert not list(checkpoints.glob("*/metrics.json")), "the run finished before it could be killed"
    subprocess.run(argv + ["--out", str(tmp_path / "b")], check=True, capture_output=True)
    (done_a,), (done_b,) = ([d for d in p.iterdir() if d.is_dir()] for p in (tmp_path / "a" / "train", checkpoints))
    assert done_a.name == done_b.name
    weights_a = torch.load(done_a / "model.pt", weights_only=True)["state_dict"]
    weights_b = torch.load(done_b / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    metrics_a, metrics_b = (json.loads((d / "metrics.json").read_text()) for d in (done_a, done_b))
    assert (metrics_a["top1"], metrics_a["top5"]) == (metrics_b["top1"], metrics_b["top5"])


def test_weights_for_another_dataset_are_named(capsys, tmp_path):
    arch = PRESETS["resnet20"](num_classes=100)
    save_model(tmp_path / "c100.pt", arch, build_resnet(arch))
    code, _, err = run(capsys, "train", "--weights", str(tmp_path / "c100.pt"), "--out", str(tmp_path))
    assert code == 2 and "is a 100-class cifar network, not one for dataset 'proxy'" in err
    code, out, _ = run(capsys, "prune", "--method", "l1", "--weights", str(tmp_path / "c100.pt"), "--ratio", "0.5")
    assert code == 0 and out["macs_unpruned"] == macs(arch)

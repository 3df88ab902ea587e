"""`released`: the TAS authors' shapes as a pruner, each at its own FLOP ratio, retrained from a fresh init."""

import pytest
import torch
from runner_helpers import write_spec

from tas.released import CONFIG_DIR, PAPER_SHAPES, ReleasedOptions, prune_released, shipped_configs
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.official_config import read_tas_config
from tasbench.presets import PRESETS, resnet32, resnet56
from tasbench.pruner import PruneRequest, get_pruner
from tasbench.resnet import build_resnet
from tasbench.runner.experiment import run_one
from tasbench.runner.spec import load_sweep

# (network, classes) -> (MACs of the paper's released shape, its ratio to 3 decimals, as the reproduce specs list it)
PAPER_ROWS = {
    ("resnet20", 10): (22_444_482, 0.550),
    ("resnet32", 10): (34_945_354, 0.506),
    ("resnet56", 10): (59_451_400, 0.473),
    ("resnet110", 10): (119_259_268, 0.471),
    ("resnet164", 10): (178_071_234, 0.719),
    ("resnet20", 100): (22_433_892, 0.550),
    ("resnet32", 100): (42_468_708, 0.614),
    ("resnet56", 100): (61_233_936, 0.487),
    ("resnet110", 100): (119_578_384, 0.472),
    ("resnet164", 100): (171_143_892, 0.691),
    ("resnet18", 1000): (1_210_758_120, 0.667),
    ("resnet50", 1000): (2_309_249_169, 0.565),
}


@pytest.mark.parametrize("network,classes", list(PAPER_SHAPES), ids=[f"{n}-{c}" for n, c in PAPER_SHAPES])
def test_every_paper_row_gets_its_released_shape(network, classes):
    arch = PRESETS[network](num_classes=classes)
    expected_macs, ratio = PAPER_ROWS[(network, classes)]
    out = prune_released(PruneRequest(arch, build_resnet(arch), ratio), ReleasedOptions())
    assert macs(out.arch) == expected_macs and out.info["config"] == PAPER_SHAPES[(network, classes)]
    assert out.arch == read_tas_config(CONFIG_DIR / out.info["config"])
    assert [m.out_channels for m in out.model.modules() if isinstance(m, torch.nn.Conv2d)][0] == out.arch.xchannels[1]
    assert out.info["inherits_weights"] is False


def test_the_paper_cifar10_resnet56_row_is_the_compares_shape_not_the_main_release():
    out = prune_released(PruneRequest(resnet56(), build_resnet(resnet56()), 0.473), ReleasedOptions())
    assert out.info["config"] == "compares/CIFAR010-TAS-R56.config" and macs(out.arch) == 59_451_400
    main = read_tas_config(CONFIG_DIR / "C010-ResNet56.config")
    assert macs(main) == 59_858_440 and main != out.arch


def test_the_net_is_freshly_initialised_from_the_run_seed():
    arch = resnet32()
    teacher = build_resnet(arch)
    a, b, c = (prune_released(PruneRequest(arch, teacher, 0.506, seed=s), ReleasedOptions()) for s in (0, 0, 1))
    wa, wb, wc = (out.model.stem.conv.weight for out in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert not torch.equal(wa, teacher.stem.conv.weight[: wa.shape[0]])


@pytest.mark.parametrize(
    "options,ratio,message",
    [
        (
            {},
            0.5,
            "ratio 0.5 is not that of the released shape 'C010-ResNet32.config' (0.5055 of the FLOPs); set the "
            "run's ratio to 0.506",
        ),
        (
            {"config": "CIFAR010-TAS-R56"},
            0.506,
            "released config 'compares/CIFAR010-TAS-R56.config' is not a shape of resnet32 with 10 classes",
        ),
    ],
)
def test_a_wrong_ratio_or_shape_is_one_clear_error(options, ratio, message):
    with pytest.raises(ConfigError) as e:
        prune_released(PruneRequest(resnet32(), build_resnet(resnet32()), ratio), ReleasedOptions(**options))
    assert str(e.value) == message


def test_unknown_config_names_the_shipped_ones():
    with pytest.raises(ConfigError, match="unknown released config 'C010-ResNet57'; allowed: C010-ResNet110, "):
        ReleasedOptions(config="C010-ResNet57")
    assert {"C010-ResNet20", "CIFAR010-TAS-R56", "CIFAR100-FIX-R32"} <= set(shipped_configs())


def test_no_released_shape_for_a_zero_pad_net():
    arch = resnet56(shortcut="zero-pad")
    with pytest.raises(ConfigError, match="released shapes use the official shortcut, not 'zero-pad'"):
        prune_released(PruneRequest(arch, build_resnet(arch), 0.473), ReleasedOptions())


def test_a_released_run_retrains_the_shape_end_to_end(tmp_path, one_thread):  # noqa: F811
    """Through the registry and the runner: a sweep entry `released` at the shape's ratio trains the shape."""
    spec = write_spec(tmp_path, methods=[{"method": "released", "label": "TAS (released shape)"}], ratios=[0.55])
    (cfg,) = load_sweep(spec).runs
    assert get_pruner("released").options is ReleasedOptions
    metrics = run_one(cfg, tmp_path / "runs", device=torch.device("cpu"), latency_batches=(1,))
    assert metrics["macs"] == 22_444_482 and metrics["prune_info"]["config"] == "C010-ResNet20.config"
    assert metrics["flop_ratio"] == pytest.approx(0.5499, abs=1e-4)

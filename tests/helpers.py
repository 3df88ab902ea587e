"""Small shapes and data sets that make training tests take seconds on a CPU; running the CLI in-process."""

import json

import torch

from tasbench.arch import Arch
from tasbench.data import ImageData, TensorSplit
from tasbench.flop_target import scale_widths
from tasbench.presets import resnet20


def tiny_arch(num_classes: int = 10) -> Arch:
    """ResNet-20 at a quarter width (4/8/16 channels): every block type and shortcut, a few hundred kMACs."""
    return scale_widths(resnet20(num_classes), 0.25)


# Ten well-separated colours: the 8 corners of the RGB cube and two greys.
PALETTE = torch.tensor(
    [
        [0, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 1],
        [0.33, 0.33, 0.33],
        [0.67, 0.67, 0.67],
    ]
)


def random_data(n_train: int = 96, n_test: int = 40, classes: int = 10, seed: int = 0) -> ImageData:
    """Noisy uint8 images tinted by their label's colour: an easy task a tiny net learns in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> TensorSplit:
        labels = torch.randint(0, classes, (n,), generator=g)
        tint = PALETTE[labels % len(PALETTE)].view(n, 3, 1, 1) * 150
        images = tint + torch.randint(0, 106, (n, 3, 32, 32), generator=g)
        return TensorSplit(images.to(torch.uint8), labels)

    return ImageData("random", classes, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), split(n_train), split(n_test))


def tiny_bottleneck(num_classes: int = 10) -> Arch:
    """Two bottleneck blocks per stage at widths 4/8/16 (x4 out): a stride-1 projection in stage 1, 2,192,010 MACs."""
    widths = [3, 4] + [w for planes in (4, 8, 16) for w in [planes, planes, 4 * planes] * 2]
    return Arch("cifar", "bottleneck", (2, 2, 2), (2, 2, 2), tuple(widths), num_classes)


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """`tas-bench ARGV` in-process: exit code, the printed JSON (if any: success, or a check that failed) and stderr."""
    from tasbench.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def assert_one_line_error(capsys, argv: list[str], message: str) -> None:
    """Bad input: exit status 2, nothing on stdout, one stderr line containing `message`, no traceback."""
    from tasbench.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err

"""`build_resnet(arch)`: the one builder for every CIFAR and ImageNet ResNet shape, full width or pruned.

    >>> model = build_resnet(resnet20())
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])

Module names are stable and meaningful to pruners: `stem.conv`, `stages.{s}.{b}.convs.{i}` / `.bns.{i}`,
`stages.{s}.{b}.shortcut.conv` (and `.bn` where the projection has one), `fc`. `flops.layer_macs(arch)` uses the
same names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasbench.arch import STEM, Arch, BlockSpec, block_specs
from tasbench.batch_norm import BatchNorm2d


class Projection(nn.Module):
    """Official TAS shortcut: 2x2 avg-pool when the block strides, then a 1x1 conv, then a BN where the release has
    one (`arch.projection_has_bn`: none after a strided CIFAR projection).

    The official code puts the stride in the pooling rather than the 1x1 conv (`ConvBNReLU(..., has_avg=True)` in
    `InferCifarResNet.py`, `Downsample` in `CifarResNet.py`), which costs 0.26 MMACs more than option A on ResNet-56
    but sees every input pixel.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool, pooled: bool = True):
        super().__init__()
        # pooled=False: torchvision's strided 1x1 conv (shortcut "torchvision"), which its ImageNet weights need.
        self.pool = nn.AvgPool2d(2) if stride == 2 and pooled else nn.Identity()
        self.conv = nn.Conv2d(c_in, c_out, 1, 1 if pooled else stride, bias=False)
        self.bn = BatchNorm2d(c_out) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.pool(x))
        return out if self.bn is None else self.bn(out)


class ZeroPad(nn.Module):
    """Option-A shortcut of He et al.: subsample by the stride, append zero channels. No parameters, no MACs."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))


class Block(nn.Module):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1) residual block with arbitrary per-conv widths."""

    def __init__(self, spec: BlockSpec):
        super().__init__()
        ins = (spec.in_width,) + spec.widths[:-1]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
            for c_in, c_out, k, s in zip(ins, spec.widths, spec.kernels, spec.strides)
        )
        self.bns = nn.ModuleList(BatchNorm2d(c) for c in spec.widths)
        if spec.shortcut == "projection":
            self.shortcut = Projection(spec.in_width, spec.out_width, spec.stride, spec.shortcut_bn, spec.pooled)
        elif spec.shortcut == "zero-pad":
            self.shortcut = ZeroPad(spec.in_width, spec.out_width, spec.stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            out = bn(conv(out))
            if i < last:
                out = F.relu(out)
        return F.relu(out + self.shortcut(x))


class Stem(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        kernel, stride = STEM[arch.family]
        self.conv = nn.Conv2d(arch.xchannels[0], arch.xchannels[1], kernel, stride, kernel // 2, bias=False)
        self.bn = BatchNorm2d(arch.xchannels[1])
        # torchvision's ImageNet ResNet (and the official TAS ImageNet model) max-pool after the stem.
        self.pool = nn.MaxPool2d(3, 2, 1) if arch.family == "imagenet" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.bn(self.conv(x))))


class ResNet(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        specs = block_specs(arch)
        self.stem = Stem(arch)
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(s) for s in specs if s.stage == stage)) for stage in range(len(arch.layers))
        )
        self.fc = nn.Linear(specs[-1].out_width, arch.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def seeded_resnet(arch: Arch, seed: int) -> ResNet:
    """`build_resnet(arch)` initialised from a private RNG seeded with `seed`; the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_resnet(arch)


def build_resnet(arch: Arch) -> ResNet:
    """Build the network `arch` describes, initialised from the global RNG as the official TAS code does
    (`initialize_resnet` in `lib/models/initialization.py`: Kaiming fan-out convs, unit BN, N(0, 0.01) classifier)."""
    model = ResNet(arch)
    initialise(model)
    return model


def initialise(model: nn.Module) -> None:
    """Initialise `model`'s convs, BNs and classifier from the global RNG, as the official `initialize_resnet`
    (`lib/models/initialization.py`): Kaiming fan-out convs, unit BN, N(0, 0.01) classifier. Also the TAS search
    model's, which draws in the same module order as the net it searches."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)

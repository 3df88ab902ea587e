"""FLOPs and parameters of a ResNet shape, computed from the `Arch` alone and measured on a built module.

The convention is the TAS paper's (and its released counter, `lib/utils/flop_benchmark.py`): "FLOPs" are
multiply-accumulates of conv and linear layers at batch 1, biases included; BN, ReLU, additions and pooling are free.

    >>> macs(resnet20()), macs(resnet56()), macs(resnet56(shortcut="zero-pad"))
    (40813194, 125747850, 125485706)

The TAS FLOP loss calls `conv_macs` with expected (fractional, differentiable) widths, so the search and the engine
count with one formula.
"""

from __future__ import annotations

import torch
from torch import nn

from tasbench.arch import STEM, Arch, block_specs


def conv_macs(kernel: int, c_in, c_out, out_size: int):
    """MACs of a bias-free k x k conv producing an `out_size` x `out_size` map; widths may be floats or tensors."""
    return kernel * kernel * out_size * out_size * c_in * c_out


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a conv padded by kernel // 2 (all convs of the family are)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def layer_macs(arch: Arch) -> dict[str, int]:
    """MACs per conv/linear layer, keyed by the module name `build_resnet(arch)` gives that layer."""
    out: dict[str, int] = {}
    kernel, stride = STEM[arch.family]
    size = conv_out_size(arch.image_size, kernel, stride)
    out["stem.conv"] = conv_macs(kernel, arch.xchannels[0], arch.xchannels[1], size)
    if arch.family == "imagenet":
        size = conv_out_size(size, 3, 2)  # the stem's 3x3/2 max-pool, padding 1
    specs = block_specs(arch)
    for spec in specs:
        name = f"stages.{spec.stage}.{spec.index}"
        c_in = spec.in_width
        for i, (c_out, k, s) in enumerate(zip(spec.widths, spec.kernels, spec.strides)):
            size = conv_out_size(size, k, s)
            out[f"{name}.convs.{i}"] = conv_macs(k, c_in, c_out, size)
            c_in = c_out
        if spec.shortcut == "projection":
            out[f"{name}.shortcut.conv"] = conv_macs(1, spec.in_width, spec.out_width, size)
    out["fc"] = specs[-1].out_width * arch.num_classes + arch.num_classes  # weights + bias
    return out


def macs(arch: Arch) -> int:
    """Total MACs ("FLOPs" in the TAS paper) of `arch` at batch 1."""
    return sum(layer_macs(arch).values())


def params(arch: Arch) -> int:
    """Number of parameters (conv weights, BN affine, classifier) of `build_resnet(arch)`."""
    kernel, _ = STEM[arch.family]
    total = kernel * kernel * arch.xchannels[0] * arch.xchannels[1] + 2 * arch.xchannels[1]
    specs = block_specs(arch)
    for spec in specs:
        c_in = spec.in_width
        for c_out, k in zip(spec.widths, spec.kernels):
            total += k * k * c_in * c_out + 2 * c_out
            c_in = c_out
        if spec.shortcut == "projection":
            total += spec.in_width * spec.out_width + (2 * spec.out_width if spec.shortcut_bn else 0)
    return total + specs[-1].out_width * arch.num_classes + arch.num_classes


def count_macs(model: nn.Module, image_size: int, in_channels: int = 3) -> dict[str, int]:
    """Measure MACs per conv/linear module of `model` with forward hooks on one `image_size` x `image_size` input.

    Independent of `layer_macs`: it reads the shapes the real forward pass produces, as the official counter does.
    """
    counts: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs, output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                positions = output.shape[2] * output.shape[3]
                k_h, k_w = module.kernel_size
                n = k_h * k_w * module.in_channels // module.groups * module.out_channels * positions
                n += module.out_channels * positions if module.bias is not None else 0
            else:
                n = module.in_features * module.out_features
                n += module.out_features if module.bias is not None else 0
            counts[name] = counts.get(name, 0) + n

        return record

    handles = [
        m.register_forward_hook(hook(name))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts

"""A literal transcription of the official TAS search forward pass, kept as a test oracle and a speed baseline.

It follows `SearchCifarResNet.py` / `SoftSelect.py` of the release step by step: every conv input is zero-filled to
full width (`conv_forward`), the full conv runs, each picked width is sliced and goes through its own BatchNorm,
CWI (`ChannelWiseInterV2`, an adaptive average pool) grows each to the widest, the outputs are summed with their
weights; blocks add with `additive_func`; stages mix their candidate depths with CWI. `SearchResNet.forward_picked`
computes the same with sliced convs and one folded 1x1 mixing conv per layer; tests assert the two agree.

    >>> picks, depth = model.sample(tau=5.0, generator=g)
    >>> torch.allclose(official_forward(model, images, picks, depth), model.forward_picked(images, picks, depth))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tas.channel_interp import cwi
from tas.search_model import Pick, SearchConv, SearchResNet


def grow(x: torch.Tensor, width: int, align_mode: str) -> torch.Tensor:
    """CWI to `width` channels, or zero-padding for the no-CWI ablation."""
    return cwi(x, width) if align_mode == "cwi" else F.pad(x, (0, 0, 0, 0, 0, width - x.shape[1]))


def official_conv(conv: SearchConv, x: torch.Tensor, pick: Pick, align_mode: str) -> torch.Tensor:
    if conv.pool is not None:
        x = conv.pool(x)
    x = F.pad(x, (0, 0, 0, 0, 0, conv.conv.in_channels - x.shape[1]))  # `conv_forward`: zero-fill to full width
    y = conv.conv(x)
    outs = []
    for index, width in zip(pick.index.tolist(), pick.widths):  # one BatchNorm2d per candidate width
        outs.append(
            F.batch_norm(
                y[:, :width], None, None, conv.bn_weight[index, :width], conv.bn_bias[index, :width], training=True
            )
        )
    widest = max(o.shape[1] for o in outs)
    return sum(w * grow(o, widest, align_mode) for w, o in zip(pick.weight, outs))


def additive(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`additive_func`: add two maps, the narrower zero-padded."""
    c = max(a.shape[1], b.shape[1])
    return F.pad(a, (0, 0, 0, 0, 0, c - a.shape[1])) + F.pad(b, (0, 0, 0, 0, 0, c - b.shape[1]))


def official_forward(model: SearchResNet, images: torch.Tensor, picks: list[Pick], depth: torch.Tensor) -> torch.Tensor:
    """The search forward pass of `model`'s weights, computed the released code's way (dynamic-shape picks only)."""
    x = F.relu(official_conv(model.stem, images, picks[0], model.align_mode))
    if model.pool is not None:
        x = model.pool(x)
    outputs = []
    for block, (stage, index) in zip(model.blocks, model.stage_of):
        out = x
        for i, (conv, row) in enumerate(zip(block.convs, block.rows)):
            out = official_conv(conv, out, picks[row], model.align_mode)
            out = F.relu(out) if i < len(block.convs) - 1 else out
        residual = (
            x
            if block.projection is None
            else official_conv(block.projection, x, picks[block.rows[-1]], model.align_mode)
        )
        x = F.relu(additive(residual, out))
        if index + 1 in model.space.depths[stage]:
            outputs.append(x)
        if index + 1 == model.space.arch.layers[stage]:
            if model.searched != "width":
                widest = max(o.shape[1] for o in outputs)
                x = sum(depth[stage, j] * grow(o, widest, model.align_mode) for j, o in enumerate(outputs))
            outputs = []
    pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
    return F.linear(pooled, model.fc.weight[:, : pooled.shape[1]], model.fc.bias)

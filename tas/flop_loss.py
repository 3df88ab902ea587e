"""Differentiable expected FLOPs of the search space (paper Eq. 6) and the FLOP loss (paper Eq. 7).

`ExpectedFlops` is the expectation of the engine's count `tasbench.flops.macs` when every conv picks its width and
every stage its depth independently, with the given probabilities. It walks the net exactly as `layer_macs` does
and calls the same `conv_macs`, so for one-hot probabilities it *is* `macs(derive(...))`, to the MAC:

    >>> space = search_space(resnet20())
    >>> flops = ExpectedFlops(space)
    >>> flops(one_hot(width_index), one_hot(depth_index)) == macs(derive(space, width_index, depth_index))
    tensor(True)

Like the official `get_flops`, E[MACs of a conv] = k^2 * H * W * E[C_in] * E[C_out] (the two widths are
independent), a block's MACs count with the probability that its stage keeps it (a reversed cumulative sum of the
depth probabilities), and the classifier adds E[C_last] * classes. One addition: a derived block whose input and
output widths differ gets a projection shortcut (official `InferCifarResNet`), so its expected MACs
`E[C_in C_out 1{C_in != C_out}]` are counted too. The official estimate leaves them out, which is why its
`estimated_FLOP` disagrees with the count of the net it derives.
"""

from __future__ import annotations

import torch
from torch import nn

from tas.search_space import SearchSpace
from tasbench.arch import STEM, block_specs
from tasbench.flops import conv_macs, conv_out_size


class ExpectedFlops(nn.Module):
    """Expected MACs (float64, differentiable) from width probabilities [rows, N] and depth probabilities [stages, D].

    Candidate tables are buffers, so nothing crosses from host to device while searching.
    """

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        arch = space.arch
        n, d = space.max_width_candidates, space.max_depth_candidates
        values = torch.zeros(space.rows, n, dtype=torch.float64)
        for row, cands in enumerate(space.widths):
            values[row, : len(cands)] = torch.tensor(cands, dtype=torch.float64)
        self.register_buffer("values", values, persistent=False)
        # keep[s][b, j] = 1 if depth candidate j keeps block b of stage s; last[s][b, j] = 1 if b is its last block.
        keep = torch.zeros(len(arch.layers), max(arch.layers), d, dtype=torch.float64)
        last = torch.zeros_like(keep)
        for s, cands in enumerate(space.depths):
            for j, depth in enumerate(cands):
                keep[s, :depth, j] = 1
                last[s, depth - 1, j] = 1
        self.register_buffer("keep", keep, persistent=False)
        self.register_buffer("last", last, persistent=False)
        # same[(a, b)][i, j] = c^2 when candidate i of row a and candidate j of row b are both c channels wide.
        self._pairs: list[tuple[int, int]] = []
        for spec in block_specs(arch):
            if spec.stride == 1:
                self._pairs.append((self._in_row(spec), spec.first_conv + len(spec.widths) - 2))
        same = torch.zeros(len(self._pairs), n, n, dtype=torch.float64)
        for p, (a, b) in enumerate(self._pairs):
            for i, ca in enumerate(space.widths[a]):
                for j, cb in enumerate(space.widths[b]):
                    same[p, i, j] = ca * ca if ca == cb else 0
        self.register_buffer("same", same, persistent=False)

    @staticmethod
    def _in_row(spec) -> int:
        # A stride-1 block's input is the stem (first block of stage 0) or the previous block's last conv.
        return 0 if spec.first_conv == 2 else spec.first_conv - 1 - 1

    def forward(self, width_probs: torch.Tensor, depth_probs: torch.Tensor) -> torch.Tensor:
        arch = self.space.arch
        width_probs, depth_probs = width_probs.double(), depth_probs.double()
        ew = (width_probs * self.values).sum(1)  # E[width] per row
        keep = torch.einsum("sbj,sj->sb", self.keep, depth_probs)  # P(stage s keeps block b)
        last = torch.einsum("sbj,sj->sb", self.last, depth_probs)  # P(block b ends stage s)
        kernel, stride = STEM[arch.family]
        size = conv_out_size(arch.image_size, kernel, stride)
        total = conv_macs(kernel, arch.xchannels[0], ew[0], size)
        if arch.family == "imagenet":
            size = conv_out_size(size, 3, 2)
        e_in = ew[0]
        stage_out = ew.new_zeros(())
        pair = 0
        for spec in block_specs(arch):
            if spec.index == 0 and spec.stage > 0:
                e_in, stage_out = stage_out, ew.new_zeros(())
            block, c_in = 0, e_in
            for i, (k, s) in enumerate(zip(spec.kernels, spec.strides)):
                size = conv_out_size(size, k, s)
                row = spec.first_conv - 1 + i
                block = block + conv_macs(k, c_in, ew[row], size)
                c_in = ew[row]
            out_row = spec.first_conv + len(spec.widths) - 2
            if spec.stride == 1:  # identity, unless the derived widths differ (then a 1x1 projection)
                a, _ = self._pairs[pair]
                same = width_probs[a] @ self.same[pair] @ width_probs[out_row]
                block = block + size * size * (e_in * ew[out_row] - same)
                pair += 1
            else:
                block = block + conv_macs(1, e_in, ew[out_row], size)
            total = total + keep[spec.stage, spec.index] * block
            stage_out = stage_out + last[spec.stage, spec.index] * ew[out_row]
            e_in = ew[out_row]
        return total + stage_out * arch.num_classes + arch.num_classes


def flop_loss(expected: torch.Tensor, current: torch.Tensor, target: float, tolerance: float) -> torch.Tensor:
    """Paper Eq. 7 as released (`get_flop_loss` in `search-shape.py`): grow while the argmax net's MACs `current`
    are below `target - tolerance`, shrink while above `target`, nothing in between. All on the device."""
    log_e = expected.log()
    zero = torch.zeros_like(log_e)
    return torch.where(current > target, log_e, torch.where(current < target - tolerance, -log_e, zero))

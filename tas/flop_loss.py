"""Differentiable expected FLOPs of the search space (paper Eq. 6), the argmax net's FLOPs, and the FLOP loss (Eq. 7).

The search uses two FLOP figures: the expected FLOPs, which the FLOP loss differentiates, and the current FLOPs of
the argmax net, which pick the loss's branch (grow, shrink or rest). `ExpectedFlops(space, count)` computes both, in
one of two ways (`SearchConfig.flop_count`):

- `official` (default): as the TAS release computes them (`SearchShapeCifarResNet.search_forward` and
  `get_flop("genotype")` in `lib/models/shape_searchs/SearchCifarResNet.py`; `SearchImagenetResNet.py` likewise).
  Expected: per conv k^2 * H * W * E[C_in] * E[C_out] with the plain softmax of the width logits, each block's
  MACs times the probability that its stage keeps it (reversed cumulative sum of the depth softmax), the projections
  of the unpruned net only (none for the projections that width mismatches create), the width entering the next
  stage and the classifier taken from the stage's last block as if every block were kept, no classifier bias.
  Current: the same walk with one-hot probabilities, plus a projection wherever a kept stride-1 block's input and
  output widths differ, the input read from the previous conv even when that conv's block was dropped.
- `exact`: both figures are the engine's count `tasbench.flops.macs`: the expected FLOPs its exact expectation over
  independent per-conv widths and per-stage depths (mismatch projections `E[C_in C_out 1{C_in != C_out}]`
  included, the next stage reading the width of the last *kept* block, classifier bias included), the current FLOPs
  `macs(derive(...))` of the argmax net, to the MAC.

Why the release's figures differ from the built net's: its estimate leaves out what its inferred nets add (mismatch
projections, which a bottleneck block almost always gets) and reads stage boundaries at full depth. On the 70 logit
settings of `tests/data/tas_official_oracle.json` the exact expectation is 0.993-1.161x the release's on the
basic-block ResNets (3-5% above for near-uniform logits) and 1.58-2.05x on ResNet-164, whose width logits' gradients
then have a cosine of only 0.55-0.80 with the release's; the release's current FLOPs lie between 2.5% of the full
FLOPs below and 1.1% above the built net's count. With `official` the search steers the release's figures, as the
paper's runs did; the net derived from given logits is the same either way.

    >>> space = search_space(resnet20())
    >>> flops = ExpectedFlops(space, "exact")
    >>> flops.current(width_index, depth_index) == macs(derive(space, width_index, depth_index))
    tensor(True)
"""

from __future__ import annotations

import torch
from torch import nn

from tas.search_space import SearchSpace
from tasbench.arch import STEM, block_specs
from tasbench.errors import choice_error
from tasbench.flops import conv_macs, conv_out_size

FLOP_COUNTS = ("official", "exact")


class ExpectedFlops(nn.Module):
    """Expected MACs (float64, differentiable) from width probabilities [rows, N] and depth probabilities [stages, D],
    and the argmax net's MACs, counted the `count` way ("official" or "exact").

    Candidate tables are buffers, so nothing crosses from host to device while searching.
    """

    def __init__(self, space: SearchSpace, count: str = "official"):
        super().__init__()
        if count not in FLOP_COUNTS:
            raise choice_error("flop_count", count, FLOP_COUNTS)
        self.space, self.count = space, count
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
        # same[p][i, j] = c^2 when candidate i of a stride-1 block's input row and candidate j of its output row are
        # both c channels wide: E[C_in C_out 1{C_in != C_out}] = E[C_in] E[C_out] - p_in @ same @ p_out.
        self._specs = block_specs(arch)
        pairs = [(_in_row(s), _out_row(s)) for s in self._specs if s.stride == 1]
        same = torch.zeros(len(pairs), n, n, dtype=torch.float64)
        for p, (a, b) in enumerate(pairs):
            for i, ca in enumerate(space.widths[a]):
                for j, cb in enumerate(space.widths[b]):
                    same[p, i, j] = ca * ca if ca == cb else 0
        self.register_buffer("same", same, persistent=False)

    def forward(self, width_probs: torch.Tensor, depth_probs: torch.Tensor) -> torch.Tensor:
        """The expected MACs that the FLOP loss differentiates."""
        return self._walk(width_probs, depth_probs, mismatch=self.count == "exact")

    def current(self, width_index: torch.Tensor, depth_index: torch.Tensor) -> torch.Tensor:
        """MACs of the net with these candidate indices (per width row, per stage): the branch-picking figure."""
        n, d = self.values.shape[1], self.keep.shape[2]
        return self._walk(one_hot(width_index, n), one_hot(depth_index, d), mismatch=True)

    def _walk(self, width_probs: torch.Tensor, depth_probs: torch.Tensor, mismatch: bool) -> torch.Tensor:
        """Walk the unpruned net block by block, as `tasbench.flops.layer_macs` walks a built one."""
        arch, exact = self.space.arch, self.count == "exact"
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
        for spec in self._specs:
            if spec.index == 0 and spec.stage > 0:
                # exact: the previous stage's last *kept* block; official: its last block, at full depth.
                e_in = stage_out if exact else e_in
                stage_out = ew.new_zeros(())
            block, c_in = 0, e_in
            for i, (k, s) in enumerate(zip(spec.kernels, spec.strides)):
                size = conv_out_size(size, k, s)
                row = spec.first_conv - 1 + i
                block = block + conv_macs(k, c_in, ew[row], size)
                c_in = ew[row]
            out_row = _out_row(spec)
            if spec.stride == 1 and (exact or spec.shortcut != "projection"):
                # Identity, unless the derived widths differ; then the derived net has a 1x1 projection.
                if mismatch:
                    same = width_probs[_in_row(spec)] @ self.same[pair] @ width_probs[out_row]
                    block = block + size * size * (e_in * ew[out_row] - same)
            else:  # a projection of the unpruned net (the release's search model has it whatever the widths)
                block = block + conv_macs(1, e_in, ew[out_row], size)
            pair += spec.stride == 1
            total = total + keep[spec.stage, spec.index] * block
            stage_out = stage_out + last[spec.stage, spec.index] * ew[out_row]
            e_in = ew[out_row]
        if exact:
            return total + stage_out * arch.num_classes + arch.num_classes
        return total + ew[-1] * arch.num_classes


def flop_loss(expected: torch.Tensor, current: torch.Tensor, target: float, tolerance: float) -> torch.Tensor:
    """Paper Eq. 7 as released (`get_flop_loss` in `search-shape.py`): grow while the argmax net's MACs `current`
    are below `target - tolerance`, shrink while above `target`, nothing in between. All on the device."""
    log_e = expected.log()
    zero = torch.zeros_like(log_e)
    return torch.where(current > target, log_e, torch.where(current < target - tolerance, -log_e, zero))


def _in_row(spec) -> int:
    """The width row feeding a block: the stem's (row 0) or the previous block's last conv's."""
    return spec.first_conv - 2


def _out_row(spec) -> int:
    return spec.first_conv + len(spec.widths) - 2


def one_hot(index: torch.Tensor, n: int) -> torch.Tensor:
    """F.one_hot without its range check, which reads the indices back to the host."""
    return (index.view(-1, 1) == torch.arange(n, device=index.device)).long()

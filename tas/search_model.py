"""The TAS search network: a full-width ResNet whose convs sample K widths and whose stages mix candidate depths.

One forward pass (paper Sec. 3.2, official `SearchCifarResNet` / `SearchShapeCifarResNet.py`):
- every conv (the stem included) draws K distinct widths from the Gumbel-softmax of its width logits; the conv runs
  once at the widest of them, each width gets its own BatchNorm, CWI grows the narrower outputs to the widest, and
  the outputs are summed with the Gumbel weights;
- a projection shortcut follows the choice of its block's last conv (its own per-width BNs, the same picks);
- every block runs; at the end of a stage the outputs after each candidate depth are grown to a common width with CWI
  and mixed with the depth Gumbel-softmax.

Two ways to hold the variable widths, with the same math:
- dynamic shapes (CPU default): tensors are exactly as wide as the widths picked, and a conv uses only the slice of
  its weight for the input channels that exist (the official code zero-pads every input to full width and runs the
  full conv);
- static shapes (GPU default): every tensor keeps its full width and channels past the picked width are zero, so the
  picks stay on the device and nothing stalls the GPU.

    >>> model = SearchResNet(search_space(resnet20()), k=2)
    >>> logits = model(torch.randn(8, 3, 32, 32), tau=10.0, generator=torch.Generator().manual_seed(0))
    >>> logits.shape, float(model.expected_flops()) / macs(resnet20())   # near-uniform probabilities at the start
    (torch.Size([8, 10]), 0.265...)       # the release's count (flop_count="exact": 0.274...)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tas.channel_interp import ALIGN_MODES, align, align_matrix
from tas.flop_loss import ExpectedFlops, one_hot
from tas.gumbel import gumbel_softmax, sample_top_k
from tas.search_space import SearchSpace, derive
from tasbench.arch import STEM, Arch, block_specs
from tasbench.batch_norm import batch_norm
from tasbench.errors import ConfigError, choice_error
from tasbench.resnet import initialise

SEARCHED = ("width+depth", "width", "depth")  # TAS, TAS(W), TAS(D)
BN_MOMENTUM, BN_EPS = 0.1, 1e-5


@dataclass
class Pick:
    """The widths one conv row uses in this forward pass: candidate indices, their weights, widths and the widest.

    Dynamic shapes hold `widths` and `widest` as ints; static shapes hold them as tensors on the device.
    """

    index: torch.Tensor  # [K] candidate indices
    weight: torch.Tensor  # [K] Gumbel-softmax weights over the K, summing to 1
    widths: list[int] | torch.Tensor
    widest: int | torch.Tensor


class SearchConv(nn.Module):
    """A conv with candidate output widths: one full-width weight, BN affine and running stats per candidate."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, candidates: tuple[int, ...], pool: bool = False
    ):
        super().__init__()
        # A strided projection averages 2x2 first, then runs a 1x1 conv (official `ConvBNReLU(has_avg=True)`).
        self.pool = nn.AvgPool2d(2) if pool else None
        self.conv = nn.Conv2d(c_in, c_out, kernel, 1 if pool else stride, kernel // 2, bias=False)
        n = len(candidates)
        # The per-width BNs of the official code (`self.BNs`), stored as rows so all picks are one gather.
        self.bn_weight = nn.Parameter(torch.ones(n, c_out))
        self.bn_bias = nn.Parameter(torch.zeros(n, c_out))
        self.register_buffer("running_mean", torch.zeros(n, c_out))
        self.register_buffer("running_var", torch.ones(n, c_out))

    def forward(self, x: torch.Tensor, c_in, pick: Pick, align_mode: str) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if isinstance(pick.widest, int):  # dynamic: only the channels that exist, only up to the widest pick
            weight = self.conv.weight[: pick.widest, :c_in]
            y = F.conv2d(x, weight, None, self.conv.stride, self.conv.padding)
        else:
            y = self.conv(x)
        width = y.shape[1]
        gamma, beta = _rows(self.bn_weight, pick, width), _rows(self.bn_bias, pick, width)
        if self.training:
            # Batch statistics of a channel do not depend on which candidate BN normalises it: compute them once.
            # momentum=1 makes the scratch buffers exactly the batch mean and (unbiased) variance.
            mean, var = y.new_zeros(width), y.new_ones(width)
            base = batch_norm(y, mean, var, None, None, True, 1.0, BN_EPS)
            self._update_running_stats(pick, mean.detach(), var.detach())
            scale, shift = gamma, beta
        else:
            rm, rv = _rows(self.running_mean, pick, width), _rows(self.running_var, pick, width)
            base, scale = y, gamma * torch.rsqrt(rv + BN_EPS)
            shift = beta - rm * scale
        # Sum over the K picks of weight_k * CWI_k(scale_k * base + shift_k), folded into one channel-mixing matrix
        # and bias (see `align_matrix`): a 1x1 convolution of the normalised map.
        interp = torch.stack([_align_matrix(c, pick.widest, width, align_mode, y.device) for c in pick.widths])
        mix = torch.einsum("k,kji,ki->ji", pick.weight, interp, scale)
        bias = torch.einsum("k,kji,ki->j", pick.weight, interp, shift)
        return F.conv2d(base, mix[:, :, None, None].to(base.dtype), bias.to(base.dtype))

    @torch.no_grad()
    def _update_running_stats(self, pick: Pick, mean: torch.Tensor, var: torch.Tensor) -> None:
        width = mean.shape[0]
        if isinstance(pick.widest, int):
            for index, c in zip(pick.index.tolist(), pick.widths):
                self.running_mean[index, :c].lerp_(mean[:c], BN_MOMENTUM)
                self.running_var[index, :c].lerp_(var[:c], BN_MOMENTUM)
            return
        inside = torch.arange(width, device=mean.device) < pick.widths.view(-1, 1)  # [K, width]
        for stats, batch in ((self.running_mean, mean), (self.running_var, var)):
            old = stats.index_select(0, pick.index)
            new = torch.where(inside, old.lerp(batch.expand_as(old), BN_MOMENTUM), old)
            stats.index_copy_(0, pick.index, new)


class SearchBlock(nn.Module):
    def __init__(self, convs: list[SearchConv], projection: SearchConv | None, first_row: int):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.projection = projection
        self.rows = list(range(first_row, first_row + len(convs)))

    def forward(self, x: torch.Tensor, c_in, picks: list[Pick], align_mode: str):
        out, c = x, c_in
        for i, (conv, row) in enumerate(zip(self.convs, self.rows)):
            out = conv(out, c, picks[row], align_mode)
            c = picks[row].widest
            if i < len(self.convs) - 1:
                out = F.relu(out)
        if self.projection is not None:
            residual = self.projection(x, c_in, picks[self.rows[-1]], align_mode)
            return F.relu(out + residual), c
        # Identity shortcut of unequal widths: the narrower map is zero-padded (official `additive_func`).
        if isinstance(c, int) and c != c_in:
            pad = abs(c - c_in)
            out, x = (F.pad(out, (0, 0, 0, 0, 0, pad)), x) if c < c_in else (out, F.pad(x, (0, 0, 0, 0, 0, pad)))
            c = max(c, c_in)
        elif not isinstance(c, int):
            c = torch.maximum(c, c_in)
        return F.relu(out + x), c


class SearchResNet(nn.Module):
    """The search network for `space`: weights, width logits [rows, N] and depth logits [stages, D]."""

    def __init__(
        self,
        space: SearchSpace,
        k: int = 2,
        align_mode: str = "cwi",
        searched: str = "width+depth",
        static_shapes: bool = False,
        flop_count: str = "official",
    ):
        super().__init__()
        if align_mode not in ALIGN_MODES:
            raise choice_error("alignment", align_mode, ALIGN_MODES)
        if searched not in SEARCHED:
            raise choice_error("searched dimension", searched, SEARCHED)
        fewest = min(len(w) for w in space.widths)
        if k != 0 and not 1 <= k <= fewest:
            raise ConfigError(
                f"k={k} width samples: allowed 1..{fewest} (the fewest candidates of any conv), or 0 for all candidates"
            )
        self.space, self.k, self.align_mode, self.searched = space, k, align_mode, searched
        self.static_shapes = static_shapes
        arch = space.arch
        kernel, stride = STEM[arch.family]
        self.stem = SearchConv(arch.xchannels[0], arch.xchannels[1], kernel, stride, space.widths[0])
        self.pool = nn.MaxPool2d(3, 2, 1) if arch.family == "imagenet" else None
        blocks, self.stage_of = [], []
        for spec in block_specs(arch):
            ins = (spec.in_width,) + spec.widths[:-1]
            rows = range(spec.first_conv - 1, spec.first_conv - 1 + len(spec.widths))
            convs = [
                SearchConv(i, o, k_, s, space.widths[r])
                for i, o, k_, s, r in zip(ins, spec.widths, spec.kernels, spec.strides, rows)
            ]
            projection = None
            if spec.shortcut == "projection":
                # Per-width BNs on every projection, the strided ones included: the release builds its strided
                # `downsample` with `has_bn=False`, but `ConvBNReLU.search_forward` normalises with `self.BNs`
                # whatever `has_bn` says (only `basic_forward`, unused while searching, reads it). The nets built
                # from the search (`tasbench.resnet`) have no BN there, as the release's inferred nets.
                projection = SearchConv(
                    spec.in_width,
                    spec.out_width,
                    1,
                    spec.stride,
                    space.widths[rows[-1]],
                    pool=spec.stride == 2 and spec.pooled,
                )
            blocks.append(SearchBlock(convs, projection, rows[0]))
            self.stage_of.append((spec.stage, spec.index))
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(arch.xchannels[-1], arch.num_classes)
        n, d = space.max_width_candidates, space.max_depth_candidates
        # Both logit tables start as N(0, 0.01) (official `nn.init.normal_(self.width_attentions, 0, 0.01)`).
        self.width_logits = nn.Parameter(torch.randn(space.rows, n) * 0.01)
        self.depth_logits = nn.Parameter(torch.randn(len(space.depths), d) * 0.01)
        width_real = torch.zeros(space.rows, n, dtype=torch.bool)
        width_values = torch.zeros(space.rows, n, dtype=torch.long)
        for r, cands in enumerate(space.widths):
            width_real[r, : len(cands)] = True
            width_values[r] = torch.tensor(cands + (cands[-1],) * (n - len(cands)))
        depth_real = torch.zeros(len(space.depths), d, dtype=torch.bool)
        for s, cands in enumerate(space.depths):
            depth_real[s, : len(cands)] = True
        self.register_buffer("width_real", width_real, persistent=False)
        self.register_buffer("width_values", width_values, persistent=False)
        self.register_buffer("depth_real", depth_real, persistent=False)
        self.flops = ExpectedFlops(space, flop_count)
        initialise(self)  # as build_resnet: the same draws for the same modules

    # ---- the architecture distribution ------------------------------------------------------------------------

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.width_logits, self.depth_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def _masked(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.width_logits.masked_fill(~self.width_real, float("-inf")),
            self.depth_logits.masked_fill(~self.depth_real, float("-inf")),
        )

    def _full(self, real: torch.Tensor) -> torch.Tensor:
        """One-hot on each row's last real candidate: the full width, or the full depth."""
        return one_hot(real.sum(1) - 1, real.shape[1]).to(self.width_logits.dtype)

    def probabilities(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain softmax probabilities of widths and depths; a dimension that is not searched stays at full."""
        width, depth = self._masked()
        width = self._full(self.width_real) if self.searched == "depth" else width.softmax(1)
        depth = self._full(self.depth_real) if self.searched == "width" else depth.softmax(1)
        return width, depth

    def argmax_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The most probable candidate per width row and per stage (on the device)."""
        width, depth = self.probabilities()
        return width.argmax(1), depth.argmax(1)

    def expected_flops(self) -> torch.Tensor:
        """The expected MACs the FLOP loss differentiates, counted the `flop_count` way (see `tas.flop_loss`)."""
        return self.flops(*self.probabilities())

    def argmax_flops(self) -> torch.Tensor:
        """MACs of the net `derive()` would return, counted the `flop_count` way, on the device (with "exact",
        `macs(self.derive())`; with "official", the release's `get_flop("genotype")`)."""
        return self.flops.current(*self.argmax_index())

    def derive(self) -> Arch:
        """The pruned architecture: the argmax width of every conv and the argmax depth of every stage."""
        width, depth = self.argmax_index()
        return derive(self.space, width.tolist(), depth.tolist())

    # ---- the forward pass -------------------------------------------------------------------------------------

    def sample(self, tau: float, generator: torch.Generator | None) -> tuple[list[Pick], torch.Tensor]:
        """Draw this pass's widths (K per conv row) and depth weights (per stage)."""
        width_logits, depth_logits = self._masked()
        if self.searched == "depth":
            index = self.width_real.sum(1, keepdim=True) - 1
            weight = torch.ones_like(index, dtype=self.width_logits.dtype)
        else:
            k = self.k if self.k else width_logits.shape[1]
            index, weight = sample_top_k(width_logits, tau, k, generator)
        if self.searched == "width":
            depth = self._full(self.depth_real)
        else:
            depth = gumbel_softmax(depth_logits, tau, generator)
        if self.static_shapes:
            widths = self.width_values.gather(1, index)
            widest = widths.max(1).values
            picks = [Pick(index[r], weight[r], widths[r], widest[r]) for r in range(len(index))]
        else:
            widths = self.width_values.gather(1, index).tolist()  # one host read per pass (free on the CPU)
            picks = [Pick(index[r], weight[r], w, max(w)) for r, w in enumerate(widths)]
        return picks, depth

    def forward(self, images: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.forward_picked(images, *self.sample(tau, generator))

    def forward_picked(self, images: torch.Tensor, picks: list[Pick], depth: torch.Tensor) -> torch.Tensor:
        """The forward pass with given width picks and depth weights (those `sample` draws)."""
        x = F.relu(self.stem(images, images.shape[1], picks[0], self.align_mode))
        if self.pool is not None:
            x = self.pool(x)
        c = picks[0].widest
        stage_outputs: list[tuple[torch.Tensor, object]] = []
        for block, (stage, index) in zip(self.blocks, self.stage_of):
            x, c = block(x, c, picks, self.align_mode)
            if index + 1 in self.space.depths[stage]:
                stage_outputs.append((x, c))
            if index + 1 == self.space.arch.layers[stage]:
                x, c = self._mix_depths(stage_outputs, depth[stage])
                stage_outputs = []
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        if isinstance(c, int):
            return F.linear(pooled, self.fc.weight[:, :c], self.fc.bias)
        return self.fc(pooled)

    def _mix_depths(self, outputs: list[tuple[torch.Tensor, object]], weights: torch.Tensor):
        """The stage output: each candidate depth's output grown to the widest by CWI, mixed with `weights`."""
        if self.searched == "width":
            return outputs[-1]
        widths = [c for _, c in outputs]
        if isinstance(widths[0], int):
            widest = max(widths)
            width = widest
        else:
            widest = torch.stack(widths).max()
            width = outputs[0][0].shape[1]
        mixed = sum(weights[j] * align(x, c, widest, width, self.align_mode) for j, (x, c) in enumerate(outputs))
        return mixed, widest


def _rows(table: torch.Tensor, pick: Pick, width: int) -> torch.Tensor:
    """The picked candidates' rows of a per-candidate table, first `width` columns: [K, width].

    With host-side picks, plain indexing: the backward of `index_select` is a scatter that costs more than the conv.
    """
    if isinstance(pick.widest, int):
        return torch.stack([table[i, :width] for i in pick.index.tolist()])
    return table.index_select(0, pick.index)[:, :width]


@functools.lru_cache(maxsize=4096)
def _cached_align_matrix(c: int, m: int, width: int, mode: str, device: torch.device) -> torch.Tensor:
    return align_matrix(c, m, width, mode, device)


def _align_matrix(c, m, width: int, mode: str, device: torch.device) -> torch.Tensor:
    """Dynamic shapes reuse the matrix of each (c, m) pair; static shapes build it on the device every pass."""
    if isinstance(c, int):
        return _cached_align_matrix(c, m, width, mode, device)
    return align_matrix(c, m, width, mode, device)

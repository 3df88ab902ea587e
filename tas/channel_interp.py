"""Channel-wise interpolation (CWI, paper Sec. 3.2): bring feature maps of different widths to one width.

The official code (`ChannelWiseInterV2` in `lib/models/shape_searchs/SoftSelect.py`) is an adaptive average pool
over the channel axis only: output channel j of `out_width` averages input channels
`floor(j * c / out_width) .. ceil((j + 1) * c / out_width) - 1`. TAS only ever *grows* a map (to the widest
candidate), and then every window holds one or two channels, so CWI is the mean of two channel gathers:

    >>> x = torch.arange(3.0).view(1, 3, 1, 1)            # channels 0, 1, 2
    >>> cwi(x, 4).flatten().tolist()                        # windows {0}, {0,1}, {1,2}, {2}
    [0.0, 0.5, 1.5, 2.0]

`align` computes the same with index tensors, so that widths may be tensors on the device (no host sync) and a map
may live inside a wider zero-padded tensor. `mode="zero-pad"` is the paper's no-CWI ablation: keep the c channels
and append zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGN_MODES = ("cwi", "zero-pad")


def cwi(x: torch.Tensor, out_width: int) -> torch.Tensor:
    """The official CWI: adaptive average pooling of (B, C, H, W) to (B, out_width, H, W) along channels only."""
    b, c, h, w = x.shape
    if c == out_width:
        return x
    return F.adaptive_avg_pool3d(x.unsqueeze(1), (out_width, h, w)).squeeze(1)


def align_index(c, m, width: int, mode: str = "cwi", device: torch.device | None = None):
    """Gather indices (first, second) and a keep-mask of length `width` that map a c-channel map onto m >= c channels.

    `c` and `m` may be ints or 0-d integer tensors. Channels j >= m (room for a wider map) get mask 0.
    CWI: first = floor(j c / m), second = ceil((j + 1) c / m) - 1; zero-pad: first = second = j, mask j < c.
    """
    j = torch.arange(width, device=device)
    if mode == "cwi":
        first = torch.div(j * c, m, rounding_mode="floor")
        second = torch.div((j + 1) * c + m - 1, m, rounding_mode="floor") - 1
        keep = j < m
    else:
        first = second = j
        keep = j < c
    # Indices past the map's real width are masked out; clamp them so the gather stays in bounds.
    first = torch.minimum(first, torch.as_tensor(c, device=device) - 1)
    second = torch.minimum(second, torch.as_tensor(c, device=device) - 1)
    return first, second, keep


def align(x: torch.Tensor, c, m, width: int | None = None, mode: str = "cwi") -> torch.Tensor:
    """The first `c` channels of `x` grown to `m` channels by CWI (or zero-padding), in a map of `width` channels.

    Dynamic shapes (int widths): `width` defaults to m and the result equals `cwi(x[:, :c], m)`. Static shapes
    (0-d tensor widths, e.g. sampled on the GPU): `width` is the full width and channels >= m come out zero.
    """
    width = (m if isinstance(m, int) else x.shape[1]) if width is None else width
    if isinstance(c, int) and c == m == width:
        return x[:, :m]
    first, second, keep = align_index(c, m, width, mode, x.device)
    out = x.index_select(1, first)
    if mode == "cwi":
        # 0.5 * (a + a) == a exactly in floating point, so one-channel windows are copied unchanged.
        out = 0.5 * (out + x.index_select(1, second))
    if mode == "cwi" and isinstance(m, int) and m == width:
        return out  # every output channel is a real one
    return out * keep.view(1, -1, 1, 1).to(out.dtype)


def align_matrix(c, m, width: int, mode: str = "cwi", device: torch.device | None = None) -> torch.Tensor:
    """`align` as a (width x width) matrix A over channels: `align(x, c, m, width) == einsum("ji,bihw->bjhw", A, x)`.

    TAS mixes K per-width BN outputs, each a per-channel affine map of one normalised conv output; folding the affine
    maps, the CWI and the mixing weights into one such matrix turns about 20 passes over the feature map per conv
    (forward and backward of gathers, scales, sums) into a single 1x1 convolution.
    """
    first, second, keep = align_index(c, m, width, mode, device)
    columns = torch.arange(width, device=device)
    # One-hot rows by comparison: F.one_hot would read the indices back to check their range.
    matrix = (first.view(-1, 1) == columns).float() + (second.view(-1, 1) == columns).float()
    return matrix.mul_(0.5 * keep.float().view(-1, 1))

"""The embedded proxy data set: CIFAR-like images (10 classes, 32x32 RGB, uint8) generated from a seed, no download.

Every image shows one object whose outline and texture define the label (`PROXY_CLASSES`: disk, ring, square,
triangle, plus, star, crescent, striped disk, checkered square, two bars; each distinct under rotation and under a
horizontal flip, so the flip augmentation never changes a label), on a cluttered, noisy background:

- background: a random colour, a linear gradient in a random direction and a smooth 4x4 colour field, upsampled;
- object: a signed distance function on the pixel grid with a soft (sigmoid) edge, at a random position, size,
  rotation and mild stretch; lighter than the background by `contrast` in every channel (with probability
  `p_light`); textured classes alternate between the object colour and the colour half-way to the background;
- clutter: thin segments and small blobs in random colours, about two thirds behind the object, the rest in front;
- noise: i.i.d. Gaussian per pixel (`noise_std`, in 0..255 units), then clamped and rounded to uint8.

Both colours are random per image, so no colour statistic gives the label away (a nearest-centroid classifier on
the mean RGB of `make_proxy(2000, seed=0)` scores 12.8%, chance 10%). The defaults put an unpruned ResNet-20 at
about 85% after the proxy budget (5,000 training images, 10 epochs: `tas-bench train --dataset proxy`); the noise
is the main difficulty knob, and a fixed polarity (`p_light=1`) keeps the start of such short trainings reliable.

Every draw comes from one `torch.Generator` seeded with `seed` (torch keeps its low 32 bits); the global RNGs are
neither used nor changed. The same arguments give the same bytes with the same torch build on the same kind of CPU
(vectorised float maths may differ in the last bit between instruction sets, flipping a rare pixel's rounding).

>>> images, labels = make_proxy(100, seed=0)
>>> images.shape, images.dtype, labels.shape, labels.dtype
(torch.Size([100, 3, 32, 32]), torch.uint8, torch.Size([100]), torch.int64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tasbench.errors import ConfigError

# The ten classes; index = label.
PROXY_CLASSES: tuple[str, ...] = (
    "disk",
    "ring",
    "square",
    "triangle",
    "plus",
    "star",
    "crescent",
    "striped_disk",
    "checker_square",
    "two_bars",
)
NUM_CLASSES = len(PROXY_CLASSES)
IMAGE_SIZE = 32
# Images are rendered this many at a time, to bound peak memory; fixed, so the bytes depend on the arguments only.
CHUNK = 2048


@dataclass(frozen=True)
class ProxyKnobs:
    """How an image is drawn; the defaults are the data set every run uses."""

    noise_std: float = 64.0  # per-pixel Gaussian noise, 0..255 units
    clutter: int = 4  # distractor segments and blobs per image
    radius_range: tuple[float, float] = (7.0, 12.0)  # object radius in pixels; shapes are in units of it
    contrast: tuple[float, float] = (0.3, 0.5)  # per-channel object/background difference (colours in [0, 1])
    p_light: float = 1.0  # probability that the object is the lighter colour
    stretch: float = 0.15  # each axis scaled by a factor in [1 - stretch, 1 + stretch]
    edge_softness: tuple[float, float] = (0.35, 0.8)  # sigmoid edge width in pixels
    bg_gradient: float = 0.35  # largest per-channel change of the background gradient across the image
    bg_field: float = 0.12  # std of the smooth background colour field

    def __post_init__(self) -> None:
        lo, hi = self.contrast
        checks = [
            ("noise_std", self.noise_std >= 0, ">= 0"),
            ("clutter", self.clutter >= 0, ">= 0"),
            ("radius_range", 0 < self.radius_range[0] <= self.radius_range[1], "0 < low <= high"),
            ("contrast", 0.0 <= lo <= hi <= 1.0, "0 <= low <= high <= 1"),
            ("p_light", 0.0 <= self.p_light <= 1.0, "in [0, 1]"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"proxy {name} {getattr(self, name)!r} is not allowed; it must be {allowed}")


def make_proxy(num_images: int, seed: int, **knobs) -> tuple[torch.Tensor, torch.Tensor]:
    """`(images, labels)`: `num_images` uint8 images (N, 3, 32, 32), contiguous, and int64 labels in 0..9, each class
    `floor(N/10)` or `ceil(N/10)` times in a shuffled order. `knobs` are `ProxyKnobs` fields.

    >>> train_x, train_y = make_proxy(5000, seed=0)
    >>> train_x.shape, int(train_y.bincount().min())
    (torch.Size([5000, 3, 32, 32]), 500)
    """
    n, knobs = int(num_images), ProxyKnobs(**knobs)
    if n < 0:
        raise ConfigError(f"proxy num_images {n} is not allowed; it must be >= 0")
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    labels = (torch.arange(n, dtype=torch.int64) % NUM_CLASSES)[torch.randperm(n, generator=g)]
    draws = _draw(g, n, knobs)  # every per-image parameter, before any pixel noise
    out = torch.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8)
    for start in range(0, n, CHUNK):
        sl = slice(start, min(start + CHUNK, n))
        img = _render(draws, labels[sl], sl, knobs.clutter)
        noise = torch.randn(img.shape, generator=g)  # drawn per chunk, after the chunk's pixels
        out[sl] = img.mul_(255.0).add_(noise, alpha=float(knobs.noise_std)).clamp_(0.0, 255.0).round_().to(torch.uint8)
    return out, labels


def _uniform(g: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def _draw(g: torch.Generator, n: int, knobs: ProxyKnobs) -> dict[str, torch.Tensor]:
    """The random parameters of `n` images, in a fixed order of draws (the order is part of the data set)."""
    S, k = IMAGE_SIZE, knobs.clutter
    d = {}
    d["bg_mean"], d["fg"] = _colour_pair(g, n, knobs.contrast, knobs.p_light)
    d["grad_delta"] = _uniform(g, (n, 3), -knobs.bg_gradient, knobs.bg_gradient)
    d["grad_angle"] = _uniform(g, (n,), 0.0, 2 * math.pi)
    d["field"] = torch.randn((n, 3, 4, 4), generator=g) * knobs.bg_field
    d["radius"] = _uniform(g, (n,), *knobs.radius_range)
    d["angle"] = _uniform(g, (n,), 0.0, 2 * math.pi)
    d["sx"] = _uniform(g, (n,), 1.0 - knobs.stretch, 1.0 + knobs.stretch)
    d["sy"] = _uniform(g, (n,), 1.0 - knobs.stretch, 1.0 + knobs.stretch)
    span = (S / 2 - 0.8 * d["radius"]).clamp(min=0.0)  # keeps the object (mostly) in the frame
    d["cx"] = _uniform(g, (n,), -1.0, 1.0) * span
    d["cy"] = _uniform(g, (n,), -1.0, 1.0) * span
    d["soft"] = _uniform(g, (n,), *knobs.edge_softness)
    is_segment = torch.rand((n, k), generator=g) < 0.6
    d["c_col"] = torch.rand((n, k, 3), generator=g)
    d["c_x"] = _uniform(g, (n, k), -S / 2, S / 2)
    d["c_y"] = _uniform(g, (n, k), -S / 2, S / 2)
    length = _uniform(g, (n, k), 4.0, 12.0)  # segment length, px
    d["c_ang"] = _uniform(g, (n, k), 0.0, 2 * math.pi)
    half_width = _uniform(g, (n, k), 0.45, 0.8)  # segment half width, px
    blob_radius = _uniform(g, (n, k), 1.0, 2.2)
    # every distractor is a capsule: a blob is a zero-length segment of half width `blob_radius`
    d["c_half"] = torch.where(is_segment, length / 2, 0.0)
    d["c_w"] = torch.where(is_segment, half_width, blob_radius)
    return d


def _colour_pair(
    g: torch.Generator, n: int, contrast: tuple[float, float], p_light: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (background, object) RGB colours in [0, 1], (n, 3) each: per channel a difference `U(contrast)`, a dark
    value below 1 minus it and the light one above; the object takes the light one with probability `p_light`. The
    edge has one sign in every channel and a bounded strength, while neither colour says anything about the label."""
    lo, hi = float(contrast[0]), float(contrast[1])
    diff = torch.rand((n, 3), generator=g) * (hi - lo) + lo
    dark = torch.rand((n, 3), generator=g) * (1.0 - diff)
    light = dark + diff
    light_fg = (torch.rand((n, 1), generator=g) < p_light).expand(n, 3)
    return torch.where(light_fg, dark, light), torch.where(light_fg, light, dark)


def _blend_(img: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> None:
    """In place: img (n,3,H,W) <- lerp(img, colour, alpha); colour (n,3,1,1) or (n,3,H,W), alpha (n,H,W)."""
    img.add_((colour - img).mul_(alpha.unsqueeze(1)))


def _render(d: dict[str, torch.Tensor], lab: torch.Tensor, sl: slice, k: int) -> torch.Tensor:
    """Images `sl` as floats in [0, 1], before noise: background, clutter behind, object, clutter in front."""
    S, m = IMAGE_SIZE, sl.stop - sl.start
    k_back = (2 * k + 2) // 3  # about two thirds of the clutter behind the object
    # Pixel centres, origin at the image centre (x right, y down), kept separable ((m,1,S) along x, (m,S,1) along
    # y) so that each rotated coordinate costs one full-size broadcast add.
    coords = torch.arange(S, dtype=torch.float32) + 0.5 - S / 2
    gx, gy = coords.view(1, 1, S), coords.view(1, S, 1)

    ga = d["grad_angle"][sl].view(m, 1, 1)
    t = (gx * (torch.cos(ga) / S) + gy * (torch.sin(ga) / S)).unsqueeze(1)  # about -0.5..0.5 (+-0.7 diagonal)
    img = F.interpolate(d["field"][sl], size=(S, S), mode="bilinear", align_corners=False)
    img += d["grad_delta"][sl].view(m, 3, 1, 1) * t
    img += d["bg_mean"][sl].view(m, 3, 1, 1)
    img.clamp_(0.0, 1.0)

    if k:  # per pixel, the topmost distractor wins (max alpha)
        dx = torch.cos(d["c_ang"][sl]).view(m, k, 1, 1)
        dy = torch.sin(d["c_ang"][sl]).view(m, k, 1, 1)
        qx = gx.unsqueeze(1) - d["c_x"][sl].view(m, k, 1, 1)  # (m,k,1,S)
        qy = gy.unsqueeze(1) - d["c_y"][sl].view(m, k, 1, 1)  # (m,k,S,1)
        along = qx * dx + qy * dy  # (m,k,S,S)
        perp = qy * dx - qx * dy
        along.abs_().sub_(d["c_half"][sl].view(m, k, 1, 1)).clamp_(min=0.0)
        dist = along.mul_(along).addcmul_(perp, perp).sqrt_()
        dist.sub_(d["c_w"][sl].view(m, k, 1, 1))
        c_alpha = dist.mul_(-2.5).sigmoid_()  # edge width 0.4 px
        cols = d["c_col"][sl].transpose(1, 2)  # (m,3,k)
        a_back, j_back = c_alpha[:, :k_back].max(dim=1)
        col_back = torch.gather(cols[:, :, :k_back], 2, j_back.view(m, 1, S * S).expand(m, 3, S * S))
        _blend_(img, col_back.view(m, 3, S, S), a_back)

    # the object, in local coordinates x' = R^-1 (p - c) / (radius * stretch)
    rad = d["radius"][sl].view(m, 1, 1)
    ca, sa = torch.cos(d["angle"][sl]).view(m, 1, 1), torch.sin(d["angle"][sl]).view(m, 1, 1)
    qx, qy = gx - d["cx"][sl].view(m, 1, 1), gy - d["cy"][sl].view(m, 1, 1)  # (m,1,S), (m,S,1)
    ux, uy = rad * d["sx"][sl].view(m, 1, 1), rad * d["sy"][sl].view(m, 1, 1)
    lx = qx * (ca / ux) + qy * (sa / ux)  # (m,S,S)
    ly = qy * (ca / uy) - qx * (sa / uy)
    sft = d["soft"][sl].view(m, 1, 1)
    alpha, texture = torch.empty((m, S, S)), torch.ones((m, S, S))
    for c in range(NUM_CLASSES):
        idx = (lab == c).nonzero(as_tuple=True)[0]
        if idx.numel() == 0:
            continue
        dist, tex = _shape(c, lx[idx], ly[idx], rad[idx], sft[idx])
        alpha[idx] = torch.sigmoid(dist.mul_(-rad[idx] / sft[idx]))
        if tex is not None:
            texture[idx] = tex
    fgc = d["fg"][sl].view(m, 3, 1, 1)
    half = 0.5 * (fgc + d["bg_mean"][sl].view(m, 3, 1, 1))
    _blend_(img, torch.addcmul(half, fgc - half, texture.unsqueeze(1)), alpha)

    if k > k_back:
        a_front, j_front = c_alpha[:, k_back:].max(dim=1)
        col_front = torch.gather(cols[:, :, k_back:], 2, j_front.view(m, 1, S * S).expand(m, 3, S * S))
        _blend_(img, col_front.view(m, 3, S, S), a_front)
    return img


# Signed distance functions of the class shapes. Inputs are local coordinates (x, y), tensors of shape (n, H, W), in
# units of the object radius; negative inside.


def _sd_circle(x: torch.Tensor, y: torch.Tensor, r: float) -> torch.Tensor:
    return torch.sqrt(x * x + y * y) - r


def _sd_box(x: torch.Tensor, y: torch.Tensor, bx: float, by: float) -> torch.Tensor:
    qx = x.abs() - bx
    qy = y.abs() - by
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    inside = torch.maximum(qx, qy).clamp(max=0)
    return outside + inside


def _sd_polygon(x: torch.Tensor, y: torch.Tensor, verts: list[tuple[float, float]]) -> torch.Tensor:
    """Exact signed distance to a simple polygon (after I. Quilez)."""
    vx0, vy0 = verts[0]
    d = (x - vx0) ** 2 + (y - vy0) ** 2
    sign = torch.ones_like(x)
    n = len(verts)
    for i in range(n):
        vix, viy = verts[i]
        vjx, vjy = verts[i - 1]
        ex, ey = vjx - vix, vjy - viy
        wx, wy = x - vix, y - viy
        t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
        bx, by = wx - ex * t, wy - ey * t
        d = torch.minimum(d, bx * bx + by * by)
        c1 = y >= viy
        c2 = y < vjy
        c3 = ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = torch.where(flip, -sign, sign)
    return sign * torch.sqrt(d)


def _regular_polygon(n: int, r: float, phase: float = math.pi / 2) -> list[tuple[float, float]]:
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _star_polygon(points: int, r_out: float, r_in: float) -> list[tuple[float, float]]:
    verts = []
    for k in range(2 * points):
        r = r_out if k % 2 == 0 else r_in
        a = math.pi / 2 + math.pi * k / points
        verts.append((r * math.cos(a), r * math.sin(a)))
    return verts


_TRIANGLE = _regular_polygon(3, 1.0)
_STAR = _star_polygon(5, 1.0, 0.45)


def _shape(
    label: int, x: torch.Tensor, y: torch.Tensor, px: torch.Tensor, soft: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (signed distance, texture in [0,1] or None) for one class.

    ``px`` (n,1,1) is the object radius in pixels (turns local units into
    pixels for the soft texture edges), ``soft`` (n,1,1) the edge softness in
    pixels.
    """
    tex = None
    if label == 0:  # disk
        d = _sd_circle(x, y, 0.85)
    elif label == 1:  # ring
        d = (torch.sqrt(x * x + y * y) - 0.675).abs() - 0.225
    elif label == 2:  # square
        d = _sd_box(x, y, 0.70, 0.70)
    elif label == 3:  # triangle (centroid at origin)
        d = _sd_polygon(x, y, _TRIANGLE)
    elif label == 4:  # plus
        d = torch.minimum(_sd_box(x, y, 0.95, 0.28), _sd_box(x, y, 0.28, 0.95))
    elif label == 5:  # 5-point star
        d = _sd_polygon(x, y, _STAR)
    elif label == 6:  # crescent: disk minus offset disk, re-centred
        xs = x - 0.25
        d = torch.maximum(_sd_circle(xs, y, 0.9), -_sd_circle(xs - 0.45, y, 0.75))
    elif label == 7:  # striped disk
        d = _sd_circle(x, y, 0.9)
        # stripes of period 0.5 (local), soft edges in pixels
        s = torch.sin(x * (2 * math.pi / 0.5))
        tex = torch.sigmoid(s * px * (0.5 / (2 * math.pi)) / soft)
    elif label == 8:  # checkerboard square, 4x4 cells
        d = _sd_box(x, y, 0.80, 0.80)
        k = 2 * math.pi / 0.8  # cell size 0.4
        s = torch.sin(x * k) * torch.sin(y * k)
        tex = torch.sigmoid(s * px * (0.4 / math.pi) / soft)
    elif label == 9:  # two parallel bars
        d = torch.minimum(_sd_box(x, y - 0.40, 0.90, 0.22), _sd_box(x, y + 0.40, 0.90, 0.22))
    else:  # labels come from arange(n) % NUM_CLASSES
        raise AssertionError(f"unknown proxy label {label}")
    return d, tex

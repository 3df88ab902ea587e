"""Random search at the FLOP target (the paper's "random" ablation): a random net of the TAS space, no learning.

Widths and depths are drawn uniformly from their candidates; then a random walk over single candidate steps (one
conv one width narrower or wider, or, once every width is at its end, one stage shallower or deeper) moves the net
into the FLOP band [ratio - tolerance, ratio] that the learned search must also reach.

    >>> arch, info = random_arch(search_space(resnet56()), ratio=0.5, tolerance=0.05, seed=0)
    >>> 0.45 <= macs(arch) / macs(resnet56()) <= 0.5
    True
"""

from __future__ import annotations

import random

from tas.search_space import SearchSpace, derive
from tasbench.arch import Arch
from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.seeds import derive_seed

MAX_MOVES = 100_000


def random_arch(space: SearchSpace, ratio: float, tolerance: float, seed: int) -> tuple[Arch, dict]:
    """A uniformly drawn net of `space` walked into the FLOP band, and how many moves that took."""
    rng = random.Random(derive_seed(seed, "tas-random"))
    widths = [rng.randrange(len(c)) for c in space.widths]
    depths = [rng.randrange(len(d)) for d in space.depths]
    full = macs(space.arch)
    low, high = (ratio - tolerance) * full, ratio * full
    for move in range(MAX_MOVES):
        current = macs(derive(space, widths, depths))
        if low <= current <= high:
            return derive(space, widths, depths), {"random_moves": move, "flop_ratio": current / full}
        step = -1 if current > high else 1
        movable = [r for r, i in enumerate(widths) if 0 <= i + step < len(space.widths[r])]
        if movable:
            widths[rng.choice(movable)] += step
            continue
        movable = [s for s, i in enumerate(depths) if 0 <= i + step < len(space.depths[s])]
        if not movable:
            break
        depths[rng.choice(movable)] += step
    raise ConfigError(f"random search found no net within [{ratio - tolerance:.4f}, {ratio}] of the FLOPs")

"""Gumbel-softmax sampling of widths and depths (paper Eq. 2-4; official `select2withP` in `SoftSelect.py`).

Every draw comes from a `torch.Generator` on the logits' device, so a search is reproducible and resumable, and
nothing is read back to the host: the official code moves the probabilities to the CPU for `torch.multinomial`,
which stalls the GPU once per forward pass.

    >>> g = torch.Generator().manual_seed(0)
    >>> logits = torch.zeros(1, 8)
    >>> index, weight = sample_top_k(logits, tau=1.0, k=2, generator=g)
    >>> index.shape, float(weight.sum())          # 2 distinct candidates, weights summing to 1
    (torch.Size([1, 2]), 1.0)
"""

from __future__ import annotations

import torch


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Gumbel noise -log(E), E ~ Exp(1), shaped like `like`."""
    e = torch.empty_like(like).exponential_(generator=generator)
    # exponential_ can return 0 with probability ~2^-24 (fp32); the official code redraws on inf, we clamp.
    return -e.clamp_min(torch.finfo(e.dtype).tiny).log()


def perturbed_logits(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """(log_softmax(logits) + Gumbel) / tau: the official `new_logits`, whose softmax is the Gumbel-softmax."""
    return (logits.log_softmax(-1) + gumbel_noise(logits, generator)) / tau


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Gumbel-softmax probabilities over each row (the depth aggregation weights)."""
    return perturbed_logits(logits, tau, generator).softmax(-1)


def sample_top_k(
    logits: torch.Tensor, tau: float, k: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, k distinct candidate indices drawn from the Gumbel-softmax, and their renormalised weights.

    The official code draws the k indices with `torch.multinomial(probs, k, replacement=False)`. Taking the top k of
    `log(probs) + fresh Gumbel noise` draws from exactly that distribution (the Gumbel-top-k trick) and stays on the
    device. The weights are the softmax of the perturbed logits over the chosen k, as in the official code; with
    k = 1 the weight is 1 and the width logits learn from the FLOP loss alone (the paper's K = 1 ablation).
    Padded candidates (logit -inf) are never chosen while k does not exceed a row's real candidates.
    """
    new_logits = perturbed_logits(logits, tau, generator)
    if k >= logits.shape[-1]:
        index = torch.arange(logits.shape[-1], device=logits.device).expand(logits.shape)
    else:
        # log(softmax(new_logits)) differs from new_logits by a per-row constant, which top-k ignores.
        index = (new_logits + gumbel_noise(new_logits, generator)).topk(k, dim=-1).indices
    return index, new_logits.gather(-1, index).softmax(-1)

"""Knowledge distillation as a loss term for `train()`: `(1-a)*CE + a*T^2*KL(teacher/T || student/T)`.

This is the official TAS transfer loss (`loss_KD_fn` in the release; the paper's equation swaps the two
distributions, the code is right) with a = 0.9, T = 4 by default.

    >>> loss = DistillLoss(teacher, DistillConfig(alpha=0.9, temperature=4.0))
    >>> train(student, data, cfg, loss_fn=loss, device=device)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tasbench.bounds import check_fields


@dataclass(frozen=True)
class DistillConfig:
    alpha: float = 0.9  # weight of the KL term; 1 - alpha weighs the hard-label cross-entropy
    temperature: float = 4.0

    def __post_init__(self) -> None:
        check_fields(
            self,
            [
                ("alpha", 0.0 <= self.alpha <= 1.0, "in [0, 1] (KD alpha)"),
                ("temperature", self.temperature > 0, "> 0 (KD temperature)"),
            ],
        )


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """The distillation loss for one batch of logits; `teacher` carries no gradient."""
    t = cfg.temperature
    hard = F.cross_entropy(student, labels)
    soft = F.kl_div(
        F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean", log_target=True
    )
    return (1 - cfg.alpha) * hard + cfg.alpha * t * t * soft


class DistillLoss:
    """A `loss_fn(logits, labels, images)` for `train()` that asks a frozen teacher for its logits on the same batch."""

    def __init__(self, teacher: nn.Module, cfg: DistillConfig):
        self.teacher = teacher
        self.cfg = cfg

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()
        with torch.no_grad():
            teacher_logits = self.teacher(images)
        return kd_loss(logits.float(), teacher_logits.float(), labels, self.cfg)

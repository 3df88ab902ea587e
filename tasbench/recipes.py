"""Retraining recipes shared by every pruning method: how a `Pruned` net is trained after pruning.

Four recipes, so that a method's number can be told apart from its recipe's:

- `finetune`:  train the weights the pruner handed over (inherited where the method inherits them).
- `scratch`:   a fresh seeded initialisation, the same epochs ("Scratch-E" in Liu et al., "Rethinking the Value of
               Network Pruning", ICLR 2019).
- `scratch-b`: a fresh initialisation trained for the unpruned net's FLOP budget: epochs times unpruned/pruned MACs,
               rounded ("Scratch-B" in the same paper; it caps nothing, and neither do we).
- `kd`:        a fresh initialisation distilled from the unpruned teacher, (1-a)*CE + a*T^2*KL with a = 0.9, T = 4.
               This is how the official TAS code retrains a searched shape (random init + KD, see
               docs/reference/TAS-OFFICIAL.md, "Retraining"), so TAS rows use it.

    >>> recipe = Recipe("scratch-b", epochs=10)
    >>> recipe.train_config(seed=0, unpruned_macs=40_813_194, pruned_macs=20_406_597).epochs
    20
    >>> metrics = retrain(pruned, recipe, data, seed=0, unpruned_macs=macs(resnet20()), teacher=teacher,
    ...                   device=torch.device("cpu"), checkpoint_path="runs/uniform/3f2a.../checkpoint.pt")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tasbench.bounds import check_fields
from tasbench.data import ImageData
from tasbench.distill import DistillConfig, DistillLoss
from tasbench.errors import ConfigError, choice_error
from tasbench.flops import macs
from tasbench.pruner import Pruned
from tasbench.resnet import seeded_resnet
from tasbench.seeds import derive_seed
from tasbench.train import TrainConfig, cross_entropy, train

RECIPES = ("finetune", "scratch", "scratch-b", "kd")


@dataclass(frozen=True)
class Recipe:
    """One retraining recipe; every field is part of each run's hashed config. Defaults are the proxy budget."""

    name: str = "finetune"
    epochs: int = 10  # scratch-b scales this by unpruned/pruned MACs
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    kd_alpha: float = 0.9  # kd only
    kd_temperature: float = 4.0  # kd only

    def __post_init__(self) -> None:
        if self.name not in RECIPES:
            raise choice_error("recipe", self.name, RECIPES)
        self.train_config(0, 1, 1)  # the TrainConfig checks (epochs >= 1, lr > 0, ...) apply here, at parse time
        DistillConfig(self.kd_alpha, self.kd_temperature)
        # train_config clips warm-up to the (scaled) epochs; the recipe's own value must make sense unclipped
        check_fields(self, [("warmup_epochs", 0 <= self.warmup_epochs <= self.epochs, f"in [0, epochs={self.epochs}]")])

    def train_config(self, seed: int, unpruned_macs: int, pruned_macs: int) -> TrainConfig:
        epochs = self.epochs
        if self.name == "scratch-b":
            epochs = max(1, round(self.epochs * unpruned_macs / pruned_macs))
        return TrainConfig(
            epochs=epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_epochs=min(self.warmup_epochs, epochs),
            seed=seed,
        )

    def distill(self) -> DistillConfig | None:
        return DistillConfig(self.kd_alpha, self.kd_temperature) if self.name == "kd" else None

    @property
    def inherits_weights(self) -> bool:
        return self.name == "finetune"


def retrain(
    pruned: Pruned,
    recipe: Recipe,
    data: ImageData,
    *,
    seed: int,
    unpruned_macs: int,
    device: torch.device,
    teacher: nn.Module | None = None,
    checkpoint_path: str | Path | None = None,
    run_config: dict | None = None,
    progress: bool = False,
    on_epoch: Callable[[list[dict]], None] | None = None,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
) -> tuple[nn.Module, dict]:
    """Train `pruned` with `recipe`; returns the trained module and `train()`'s metrics (with its `history`).

    Resumes from `checkpoint_path` as `train()` does. `teacher` (the unpruned net) is needed by `kd` only.
    `wrap` turns the module into the one `train()` steps (e.g. `ddp.GatheredDDP`); the plain module is returned.
    """
    cfg = recipe.train_config(seed, unpruned_macs, macs(pruned.arch))
    # A fresh init is seeded by (seed, "retrain-init"), not by the pruner's seed, so scratch runs of two methods that
    # found the same shape start from the same weights.
    model = pruned.model if recipe.inherits_weights else seeded_resnet(pruned.arch, derive_seed(seed, "retrain-init"))
    loss_fn = cross_entropy
    if recipe.name == "kd":
        if teacher is None:
            raise ConfigError("recipe 'kd' needs the unpruned teacher")
        loss_fn = DistillLoss(teacher.to(device, memory_format=torch.channels_last), recipe.distill())
    # train() sets channels_last itself; a wrapper (DDP) must see the final layout when it is built.
    trained = wrap(model.to(device, memory_format=torch.channels_last)) if wrap is not None else model
    metrics = train(
        trained,
        data,
        cfg,
        device=device,
        loss_fn=loss_fn,
        checkpoint_path=checkpoint_path,
        run_config=run_config,
        progress=progress,
        on_epoch=on_epoch,
    )
    return model, metrics

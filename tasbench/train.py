"""The one training loop: plain training, or distillation when a `DistillLoss` is passed as `loss_fn`.

SGD with Nesterov momentum, linear warm-up then cosine decay per step, top-1/top-5 on the test split after every
epoch, an atomic checkpoint after every epoch. Re-running with the same checkpoint path resumes where it stopped
and ends with bit-identical weights on CPU: each epoch's data order and augmentation depend only on (seed, epoch),
and the checkpoint holds the rest (weights, BN statistics, momentum buffers, the epoch, the log so far).

    >>> metrics = train(build_resnet(resnet20()), load_data(DataConfig("proxy")), TrainConfig(epochs=10),
    ...                 device=torch.device("cpu"), checkpoint_path="runs/x/checkpoint.pt")
    >>> metrics["top1"]  # measured on the proxy: docs/training.md
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tasbench.atomic import save_torch
from tasbench.bounds import MAX_BATCH, MAX_EPOCHS, MAX_SEED, check_fields
from tasbench.checkpoint import resume_state
from tasbench.compiled import compiled
from tasbench.data import ImageData, eval_batches, num_train_batches, train_batches

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels, images) -> loss
EVAL_BATCH = 500


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe; the defaults are the proxy budget (the official CIFAR recipe is 300 + 5 warm-up epochs)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(
            self,
            [
                ("epochs", 1 <= self.epochs <= MAX_EPOCHS, f"in [1, {MAX_EPOCHS}]"),
                ("batch_size", 1 <= self.batch_size <= MAX_BATCH, f"in [1, {MAX_BATCH}]"),
                ("lr", self.lr > 0, "> 0"),
                ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                ("weight_decay", self.weight_decay >= 0, ">= 0"),
                ("warmup_epochs", 0 <= self.warmup_epochs <= self.epochs, f"in [0, epochs={self.epochs}]"),
                ("seed", 0 <= self.seed <= MAX_SEED, f"in [0, {MAX_SEED}]"),
            ],
        )


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up to `base_lr`, then cosine decay to 0."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1 + math.cos(math.pi * progress))


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, device: torch.device, split: str = "test") -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy (in %) over a whole split."""
    model.eval()
    loss = top1 = top5 = 0.0
    count = 0
    k = min(5, data.num_classes)
    for images, labels in eval_batches(data, EVAL_BATCH, device, split):
        with autocast(device):
            logits = model(images).float()
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
        best = logits.topk(k, 1).indices
        top1 += (best[:, 0] == labels).sum().item()
        top5 += (best == labels[:, None]).any(1).sum().item()
        count += len(labels)
    return {"loss": loss / count, "top1": 100 * top1 / count, "top5": 100 * top5 / count}


def train(
    model: nn.Module,
    data: ImageData,
    cfg: TrainConfig,
    *,
    device: torch.device,
    loss_fn: LossFn = cross_entropy,
    checkpoint_path: str | Path | None = None,
    run_config: dict | None = None,
    progress: bool = True,
    on_epoch: Callable[[list[dict]], None] | None = None,
    post_epoch: Callable[[nn.Module, int], None] | None = None,
) -> dict:
    """Train `model` in place and return its final test metrics and the per-epoch log.

    `run_config` (default: the `TrainConfig`) is stored in the checkpoint; resuming from a checkpoint written for a
    different one is refused rather than mixed. `on_epoch(history)` sees the log so far after each checkpoint.
    `post_epoch(model, epoch)` may change the weights after each epoch's last step (FPGM's soft pruning zeroes
    filters there); it runs before evaluation and the checkpoint, so a resumed run sees what an uninterrupted one did.
    """
    run_config = dataclasses.asdict(cfg) if run_config is None else run_config
    model.to(device, memory_format=torch.channels_last)
    data = data.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    history: list[dict] = []
    start = 0
    state = resume_state(checkpoint_path, run_config, ("model", "optimizer", "epoch", "history"), "checkpoint")
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["epoch"], state["history"]

    forward = compiled(model, device)  # `model` itself unless --compile on CUDA (compiled.py)
    steps = num_train_batches(data, cfg.batch_size)
    total, warmup = cfg.epochs * steps, cfg.warmup_epochs * steps
    bar = tqdm(
        total=total * cfg.batch_size,
        initial=start * steps * cfg.batch_size,
        unit="img",
        unit_scale=True,
        desc="train",
        disable=not progress,
        dynamic_ncols=True,
    )
    for epoch in range(start, cfg.epochs):
        model.train()
        began = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        for step, (images, labels) in enumerate(train_batches(data, cfg.batch_size, cfg.seed, epoch, device)):
            lr = lr_at(epoch * steps + step, total, warmup, cfg.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device):
                logits = forward(images)
                loss = loss_fn(logits, labels, images)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Accumulate on the device; reading a value back every step would stall a GPU.
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
            bar.update(len(labels))
        if post_epoch is not None:
            post_epoch(model, epoch)
        test = evaluate(model, data, device)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum.item() / seen,
            "train_top1": 100 * correct.item() / seen,
            "test_loss": test["loss"],
            "test_top1": test["top1"],
            "test_top5": test["top5"],
            "seconds": time.perf_counter() - began,
        }
        history.append(row)
        bar.set_postfix(epoch=epoch + 1, loss=f"{row['train_loss']:.3f}", test_top1=f"{row['test_top1']:.2f}")
        if checkpoint_path is not None:
            save_torch(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                    "config": run_config,
                },
            )
        if on_epoch is not None:
            on_epoch(history)
    bar.close()
    last = history[-1]
    return {
        "top1": last["test_top1"],
        "top5": last["test_top5"],
        "test_loss": last["test_loss"],
        "epochs": cfg.epochs,
        "train_seconds": sum(r["seconds"] for r in history),
        "history": history,
    }


def autocast(device: torch.device):
    # bf16 autocast on CUDA only: CPU bf16 convs are slower than fp32 on most CPUs, and fp32 keeps CPU runs exact.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

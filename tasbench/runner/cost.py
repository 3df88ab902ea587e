"""What a run costs, in multiply-accumulates (MACs) per phase, and how long a sweep takes on N workers.

MACs are the unit the FLOP counter gives exactly: one training image costs about 3x a net's forward MACs (the
forward pass and two backward products), one test image 1x. Per phase of a run:

- teacher: epochs x (3 x train images + test images) x MACs of the unpruned net;
- prune:   the pruner's own training (`Pruner.budget`): a TAS search step is a weight and an architecture batch,
           each forward and backward through the search net (1.5x a plain pass); FPGM's soft mode trains the
           unpruned net; 0 for one-shot pruners (L1, hard FPGM, uniform);
- retrain: epochs x (3 x pruned MACs (+ the teacher's forward with KD) x train images + pruned x test images), the
           pruned MACs estimated as ratio x unpruned (the shape is not known before the pruner has run);
- finish:  the final evaluation and the latency timing (6 forward passes per latency batch size).

ResNet-20 on the proxy spec (2,000 training and 1,000 test images), teacher of 6 epochs:

    >>> teacher_macs(cfg) / 1e12       # 6 x (3 x 2000 + 1000) x 40,813,194
    1.714...
"""

from __future__ import annotations

import heapq

from tasbench.data import DATASETS
from tasbench.flops import macs
from tasbench.pruner import PruneBudget, get_pruner
from tasbench.runner.experiment import RunConfig

TRAIN_PASS = 3  # MACs of one training image, in forward passes
LATENCY_REPEATS = 6  # latency_ms: one warm-up pass and 5 timed ones per batch size


def sizes(cfg: RunConfig) -> tuple[int, int]:
    """(training images, test images) one epoch of `cfg` reads."""
    d = cfg.data
    facts = DATASETS[d.dataset]
    n_train, n_test = (d.proxy_train, d.proxy_test) if d.dataset == "proxy" else (facts.train_images, facts.test_images)
    return d.subset or n_train, d.test_subset or n_test


def teacher_macs(cfg: RunConfig) -> float:
    n_train, n_test = sizes(cfg)
    if cfg.teacher_weights is not None:  # imported: evaluated once, nothing trains
        return macs(cfg.arch()) * n_test
    return cfg.teacher.epochs * macs(cfg.arch()) * (TRAIN_PASS * n_train + n_test)


def prune_budget(cfg: RunConfig) -> PruneBudget | None:
    """The training the run's pruner does before it decides (None: a one-shot pruner)."""
    pruner = get_pruner(cfg.method)
    return pruner.budget(cfg.options, *sizes(cfg)) if pruner.budget is not None else None


def prune_macs(cfg: RunConfig) -> float:
    budget = prune_budget(cfg)
    if budget is None:
        return 0.0
    return macs(cfg.arch()) * (TRAIN_PASS * budget.pass_cost * budget.train_images + budget.eval_images)


def retrain_epochs(cfg: RunConfig) -> int:
    full = macs(cfg.arch())
    return cfg.recipe.train_config(cfg.seed, full, max(1, round(cfg.ratio * full))).epochs


def retrain_macs(cfg: RunConfig) -> float:
    """Estimated from the target ratio: the pruned shape is not known before the pruner has run."""
    return student_macs(cfg) + distill_macs(cfg)


def student_macs(cfg: RunConfig) -> float:
    """The pruned net's training and per-epoch evaluation."""
    n_train, n_test = sizes(cfg)
    pruned = cfg.ratio * macs(cfg.arch())
    return retrain_epochs(cfg) * pruned * (TRAIN_PASS * n_train + n_test)


def distill_macs(cfg: RunConfig) -> float:
    """The teacher's forward pass on every training image, with KD (0 otherwise): it runs at the unpruned net's
    speed, so the estimate keeps it apart."""
    return retrain_epochs(cfg) * macs(cfg.arch()) * sizes(cfg)[0] if cfg.recipe.name == "kd" else 0.0


def finish_macs(cfg: RunConfig, latency_batches: tuple[int, ...] = (1, 256)) -> float:
    _, n_test = sizes(cfg)
    return cfg.ratio * macs(cfg.arch()) * (n_test + LATENCY_REPEATS * sum(latency_batches))


def job_macs(stage: str, cfg: RunConfig) -> float:
    """A teacher job's or a run job's whole cost."""
    if stage == "teacher":
        return teacher_macs(cfg)
    return prune_macs(cfg) + retrain_macs(cfg) + finish_macs(cfg)


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of jobs taken in order by the first free of `workers` (as the process pool hands them out)."""
    free = [0.0] * max(1, min(workers, len(seconds)))
    for s in seconds:
        heapq.heapreplace(free, free[0] + s)
    return max(free, default=0.0)

"""A training run, `runs/train/<hash>/`: what `tas-bench train` writes, and a sweep's unpruned teacher.

The two are one thing: a sweep's teacher is the directory `tas-bench train` writes for the same net, data and
recipe, so every run (and every user) that needs a teacher shares it. Both go through `TrainingRun` (the hashed
config) and `train_once` (train it there, resumably, or find it finished).

    runs/train/<hash>/   params.json    the hashed config, `code` and torch `threads` it started with
                         checkpoint.pt, log.csv   resumable training (train.py)
                         model.pt       the trained net
                         metrics.json   written last: top-1/5, MACs, params, seconds, environment, `code`

    >>> run = TrainingRun(preset("resnet20", 10, "cifar"), DataConfig("proxy"), TrainConfig(epochs=1))
    >>> run.directory("runs")            # `RunConfig.teacher_directory` of a proxy resnet20 with this recipe
    PosixPath('runs/train/6746ded22942')
    >>> metrics, trained = train_once(run, "runs", load=lambda: load_data(run.data), device=torch.device("cpu"))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tasbench.arch import Arch
from tasbench.atomic import remove_stale_temporaries, write_json
from tasbench.checkpoint import save_model
from tasbench.data import DataConfig, ImageData
from tasbench.distill import DistillConfig, DistillLoss
from tasbench.errors import ConfigError
from tasbench.flops import macs, params
from tasbench.pretrained import load_teacher
from tasbench.resnet import seeded_resnet
from tasbench.runner.code_identity import code_identity, code_packages
from tasbench.runner.failures import clear_failure
from tasbench.runner.locks import directory_lock
from tasbench.runner.run_files import METRICS, TEACHER_METRICS, divergence, finished, read_run_file
from tasbench.runner.store import (
    config_hash,
    environment,
    file_digest,
    run_dir,
    start_run,
    torch_threads,
    write_log_csv,
)
from tasbench.runner.supersede import finish_superseding
from tasbench.seeds import derive_seed
from tasbench.train import TrainConfig, cross_entropy, evaluate, train

KIND = "train"  # runs/train/<hash>/


@dataclass(frozen=True)
class TrainingRun:
    """Everything that decides a training run's numbers. `init_weights` and `teacher` are the SHA-256 digests
    (store.file_digest) of the model files it starts from and distils from; None for a seeded initialisation and
    for plain training (a sweep's teachers are both)."""

    arch: Arch
    data: DataConfig
    train: TrainConfig
    init_weights: str | None = None
    teacher: str | None = None
    distill: DistillConfig | None = None  # set exactly when `teacher` is

    def __post_init__(self) -> None:
        if (self.teacher is None) != (self.distill is None):
            raise ConfigError(
                "a training run distils (distill set) exactly when it names a teacher's digest; got "
                f"teacher={self.teacher!r}, distill={self.distill!r}"
            )

    def config(self) -> dict:
        """The hashed config. Its keys and values must never change: they name every existing runs/train/<hash>/."""
        return {
            "arch": self.arch.to_dict(),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "init_weights": self.init_weights,
            "teacher": self.teacher,
            "distill": dataclasses.asdict(self.distill) if self.distill else None,
        }

    def directory(self, root: str | Path) -> Path:
        return run_dir(root, KIND, self.config())


def train_once(
    run: TrainingRun,
    root: str | Path,
    *,
    load: Callable[[], ImageData],
    device: torch.device,
    model: nn.Module | None = None,
    teacher: nn.Module | None = None,
    progress: bool = False,
) -> tuple[dict, bool]:
    """The metrics of `run` under `root` (as metrics.json holds them: null for a non-finite number), and whether it
    trained here: False when it was finished already (a damaged one is moved aside and trained afresh).

    `model` is the net to train (`tas-bench train --weights`'s); None: the seeded initialisation every unpruned net
    starts from, `seeded_resnet(arch, derive_seed(train.seed, "init"))`. `teacher` is the net to distil from,
    needed exactly when `run.distill` is set. `load` gives the data, called only when there is training to do."""
    if (teacher is None) != (run.distill is None):
        why = "distils: it needs its teacher net" if teacher is None else "does not distil: it takes no teacher net"
        raise ConfigError(f"training run {str(run.directory(root))!r} {why}")
    out = run.directory(root)
    config = run.config()
    # Two processes that need the same run (two sweep workers, a sweep and `tas-bench train`) train it once: the
    # second waits here, then reads it.
    with directory_lock(out):
        if finished(out, TEACHER_METRICS) is not None:
            return read_run_file(out / METRICS, TEACHER_METRICS), False
        remove_stale_temporaries(out)  # left by a holder that was killed mid-write
        finish_superseding(out)  # a damaged run's move aside, if a kill cut it short: it must not resume from there
        data = load()
        if model is None:
            model = seeded_resnet(run.arch, derive_seed(run.train.seed, "init"))
        loss_fn = cross_entropy
        if teacher is not None:
            loss_fn = DistillLoss(teacher.to(device, memory_format=torch.channels_last), run.distill)
        # A resumed run keeps the params.json it started with: its code record says which code began it, and it
        # trains on with the thread count recorded there.
        threads = start_training(out, config)
        began = time.perf_counter()
        with torch_threads(threads):
            result = train(
                model,
                data,
                run.train,
                device=device,
                loss_fn=loss_fn,
                checkpoint_path=out / "checkpoint.pt",
                run_config=config,
                progress=progress,
                on_epoch=lambda history: write_log_csv(out / "log.csv", history),
            )
            environment_record = environment(device)
        # Written again here: a run killed after its last checkpoint resumes with nothing left to train.
        history = result.pop("history")
        write_log_csv(out / "log.csv", history)
        save_model(out / "model.pt", run.arch, model)
        write_json(
            out / METRICS,
            {
                **result,
                **divergence(out, result, history),
                "macs": macs(run.arch),
                "params": params(run.arch),
                "run_dir": str(out),
                "wall_seconds": time.perf_counter() - began,
                "environment": environment_record,
                "code": code_identity(code_packages(None)),
            },
        )
        clear_failure(out)
        return read_run_file(out / METRICS, TEACHER_METRICS), True


def start_training(out: Path, config: dict) -> int:
    """Begin (or go on with) the training run in `out`, whose resolved config is `config`; its torch thread count
    (see `store.start_run`)."""
    started = (out / "checkpoint.pt").exists() and (out / "params.json").exists()
    record = {"hash": config_hash(config), "config": config, "code": code_identity(code_packages(None))}
    return start_run(out, record, started)


@dataclass(frozen=True)
class TeacherWeights:
    """A teacher file (`teacher: {weights: PATH}`, `--teacher-weights`): its path, and the SHA-256 of its bytes,
    which is what enters the teacher's and every run's hash (a moved file keeps its runs, a changed one does not)."""

    path: str
    digest: str

    @classmethod
    def of(cls, path: str | Path) -> TeacherWeights:
        return cls(str(path), file_digest(path))


@dataclass(frozen=True)
class ImportedTeacher:
    """A teacher taken from a file instead of trained: `runs/train/<hash>/` of the net, the data and the file's digest,
    holding the net as a tas-bench model file and its test accuracy (nothing trains; `train_seconds` is 0)."""

    arch: Arch
    data: DataConfig
    weights: TeacherWeights

    def config(self) -> dict:
        return {
            "kind": "imported-teacher/1",
            "arch": self.arch.to_dict(),
            "data": dataclasses.asdict(self.data),
            "weights": self.weights.digest,
        }

    def directory(self, root: str | Path) -> Path:
        return run_dir(root, KIND, self.config())


def import_once(run: ImportedTeacher, root: str | Path, *, load: Callable[[], ImageData], device: torch.device):
    """As `train_once` for a teacher from a file: the metrics of `run` under `root`, and whether it was imported
    here (False: found finished). The file must still hold the bytes the run was planned with."""
    out = run.directory(root)
    with directory_lock(out):
        if finished(out, TEACHER_METRICS) is not None:
            return read_run_file(out / METRICS, TEACHER_METRICS), False
        remove_stale_temporaries(out)
        finish_superseding(out)
        if file_digest(run.weights.path) != run.weights.digest:
            raise ConfigError(
                f"teacher weights {run.weights.path!r} changed since the sweep was planned (SHA-256 "
                f"{run.weights.digest[:12]}...); start the sweep again"
            )
        _, model = load_teacher(run.weights.path, run.arch)
        start_training(out, run.config())
        began = time.perf_counter()
        scores = evaluate(model.to(device, memory_format=torch.channels_last), load(), device)
        save_model(out / "model.pt", run.arch, model)
        write_json(
            out / METRICS,
            {
                **scores,
                "train_seconds": 0.0,
                "weights": {"path": run.weights.path, "sha256": run.weights.digest},
                "macs": macs(run.arch),
                "params": params(run.arch),
                "run_dir": str(out),
                "wall_seconds": time.perf_counter() - began,
                "environment": environment(device),
                "code": code_identity(code_packages(None)),
            },
        )
        clear_failure(out)
        return read_run_file(out / METRICS, TEACHER_METRICS), True

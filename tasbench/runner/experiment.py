"""One benchmark run: (dataset, network, method, ratio, seed, recipe) -> teacher -> prune -> retrain -> evaluate.

    runs/train/<hash>/      the unpruned teacher: the same directory `tas-bench train` writes for the same settings,
                            so every run (and every user) that needs this teacher shares it (teacher.py)
    runs/<method>/<hash>/   params.json   the resolved config (hashed), the row label, seed, and the environment
                                          (git commit, torch/CUDA, device), `code` and torch `threads` it started
                                          with (not hashed; every resume computes with these threads: runs.py)
                            pruned.pt     the pruner's shape, weights and info, written once: a resumed run does
                                          not search again
                            checkpoint.pt, log.csv, model.pt   retraining, resumable (see train.py)
                            metrics.json  written last, atomically; its presence means "done" (a damaged one,
                                          run_files.py, is moved aside and the run computed afresh); `code` (version,
                                          git commit, source hash: code_identity.py) says which code computed it,
                                          `teacher_sha256` which teacher weights it learned from
                            error.json    the last attempt's error (failures.py), until the run succeeds
                            superseded-*/ earlier results of a recomputed run (supersede.py)

    >>> cfg = RunConfig(DataConfig("proxy"), "resnet20", "uniform", UniformOptions(), ratio=0.5, seed=0)
    >>> metrics = run_one(cfg, "runs", device=torch.device("cpu"))
    >>> metrics["flop_reduction_pct"], metrics["top1"], metrics["timing"]["latency_ms_batch1"]

metrics.json keeps everything that depends on the machine's speed under `timing` (and the software under
`environment`); the rest is a pure function of the config and is bit-identical for a resumed run on CPU.
`target_band` and `in_band` say whether the pruned net, by its exact MACs, met its method's FLOP band (`Pruner.band`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from tasbench.arch import Arch
from tasbench.atomic import remove_stale_temporaries, write_json
from tasbench.checkpoint import load_checkpoint, load_model, require, save_model
from tasbench.data import DataConfig, ImageData, load_data
from tasbench.errors import ConfigError
from tasbench.flops import macs, params
from tasbench.presets import preset
from tasbench.pruner import Pruned, PruneRequest, band_record, check_ratio, get_pruner, needs_data
from tasbench.recipes import Recipe, retrain
from tasbench.runner.code_identity import code_identity, code_packages
from tasbench.runner.failures import clear_failure
from tasbench.runner.locks import directory_lock
from tasbench.runner.run_files import (
    METRICS,
    PARAMS,
    PARAMS_FILE,
    RUN_METRICS,
    DamagedRunFile,
    divergence,
    finished,
    read_results,
    read_run_file,
)
from tasbench.runner.store import (
    config_hash,
    environment,
    file_digest,
    recorded_threads,
    run_dir,
    start_run,
    torch_threads,
    write_log_csv,
)
from tasbench.runner.supersede import finish_superseding
from tasbench.runner.teacher import ImportedTeacher, TeacherWeights, TrainingRun, import_once, train_once
from tasbench.train import TrainConfig, evaluate

LATENCY_BATCHES = (1, 256)  # batch 1 (one request) and a large throughput batch; a measurement, not in the config


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides one run's numbers. `teacher.seed` is set to `seed` by the sweep: every seed trains
    its own teacher, so the spread over seeds includes the teacher's."""

    data: DataConfig
    network: str
    method: str
    options: object  # the method's options dataclass (frozen), e.g. UniformOptions(tolerance=0.01)
    ratio: float
    seed: int = 0
    recipe: Recipe = field(default_factory=Recipe)
    teacher: TrainConfig = field(default_factory=TrainConfig)
    shortcut: str = "official"
    label: str = ""  # the row name in tables ("L1 (B)"); not hashed: it cannot change a number
    teacher_weights: TeacherWeights | None = None  # a teacher from a file (hashed by content), else `teacher` trains

    def __post_init__(self) -> None:
        check_ratio(self.ratio)

    def arch(self) -> Arch:
        return preset(self.network, self.data.num_classes, self.data.family, self.shortcut)

    def teacher_run(self) -> TrainingRun | ImportedTeacher:
        """The unpruned teacher: the training run `tas-bench train` writes for the same net, data and recipe, or
        the net of `teacher_weights` (then `teacher`, the recipe, is not used and not hashed)."""
        if self.teacher_weights is not None:
            return ImportedTeacher(self.arch(), self.data, self.teacher_weights)
        return TrainingRun(self.arch(), self.data, self.teacher)

    def teacher_config(self) -> dict:
        return self.teacher_run().config()

    def config(self) -> dict:
        """The hashed config of the run (the teacher enters by its own hash and recipe)."""
        return {
            "kind": "pruning-run/1",
            "data": dataclasses.asdict(self.data),
            "network": self.network,
            "shortcut": self.shortcut,
            "arch": self.arch().to_dict(),
            "teacher": {
                "hash": config_hash(self.teacher_config()),
                "train": None if self.teacher_weights else dataclasses.asdict(self.teacher),
            },
            "method": self.method,
            "options": dataclasses.asdict(self.options),
            "ratio": self.ratio,
            "seed": self.seed,
            "recipe": dataclasses.asdict(self.recipe),
        }

    def directory(self, root: str | Path) -> Path:
        return run_dir(root, self.method, self.config())

    def teacher_directory(self, root: str | Path) -> Path:
        return self.teacher_run().directory(root)

    @property
    def name(self) -> str:
        return self.label or self.method


def ensure_teacher(
    cfg: RunConfig, root: str | Path, data: ImageData, device: torch.device, progress: bool = False
) -> tuple[nn.Module, dict]:
    """The trained unpruned net and its metrics: read from its run directory, or trained there (resumably)."""
    run = cfg.teacher_run()
    if isinstance(run, ImportedTeacher):
        metrics, _ = import_once(run, root, load=lambda: data, device=device)
    else:
        metrics, _ = train_once(run, root, load=lambda: data, device=device, progress=progress)
    _, model = load_model(run.directory(root) / "model.pt")
    return model.to(device), metrics


def prune_once(
    cfg: RunConfig, out: Path, teacher: nn.Module, data: ImageData, device: torch.device, progress: bool = False
) -> tuple[Pruned, float]:
    """The pruner's result, computed once and kept in `out/pruned.pt` (a search can take hours)."""
    path = out / "pruned.pt"
    if path.exists():
        saved = load_checkpoint(path)
        require(saved, ("info", "prune_seconds"), f"pruned model {str(path)!r}")
        arch, model = load_model(path)
        return Pruned(arch, model, saved["info"]), float(saved["prune_seconds"])
    pruner = get_pruner(cfg.method)
    began = time.perf_counter()
    # A copy: a pruner may edit the module it is given, and the teacher must stay the unpruned net.
    # Options may ask for data too (FPGM's soft mode trains); a search keeps its resumable state in the run dir.
    given = data if needs_data(pruner, cfg.options) else None
    request = PruneRequest(
        cfg.arch(), copy.deepcopy(teacher), cfg.ratio, given, cfg.seed, device, workdir=str(out), progress=progress
    )
    pruned = pruner.prune(request, cfg.options)
    seconds = time.perf_counter() - began
    save_model(path, pruned.arch, pruned.model, info=pruned.info, prune_seconds=seconds)
    return pruned, seconds


@torch.no_grad()
def latency_ms(
    model: nn.Module, image_shape: tuple[int, ...], batch: int, device: torch.device, repeats: int = 5
) -> float:
    """Median milliseconds of one forward pass at `batch`, after one warm-up pass."""
    model.eval()
    x = torch.zeros((batch, *image_shape), device=device).contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(1000 * (time.perf_counter() - began))
    return sorted(times)[len(times) // 2]


def run_one(
    cfg: RunConfig,
    root: str | Path,
    *,
    device: torch.device,
    data_dir: str | Path | None = None,
    progress: bool = False,
    latency_batches: tuple[int, ...] = LATENCY_BATCHES,
    on_epoch: Callable[[RunConfig, list[dict]], None] | None = None,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    writer: bool = True,
    wait: bool = True,
) -> dict | None:
    """Run (or skip, or resume) one benchmark run under `root`; returns its metrics.

    The run's directory lock (locks.py) is held throughout, so two processes sharing `root` never run it at once.
    With `wait=False`, a run another process holds is left to it and None is returned (the executor comes back to
    it later); with `wait=True` this waits, then finds the run finished or (if its holder died) resumes it.
    `wrap` and `writer` serve torchrun (ddp.py): every rank retrains through `wrap`, only the writer writes files
    other than the checkpoint (which all ranks hold identically and replace atomically) and only it takes the lock.
    """
    ctx = RunContext(
        cfg,
        root,
        device,
        data_dir=data_dir,
        progress=progress,
        latency_batches=latency_batches,
        on_epoch=on_epoch,
        wrap=wrap,
        writer=writer,
    )
    out = ctx.out
    try:
        done = read_results(out, RUN_METRICS).metrics
    except DamagedRunFile:  # moved aside below, under the lock, and computed afresh
        done = None
    if done is not None:
        return done
    if not writer:
        return _run_here(ctx)
    with directory_lock(out, wait=wait) as held:
        if not held:
            return None
        remove_stale_temporaries(out)  # left by a holder that was killed mid-write
        finish_superseding(out)  # a recompute's move of the old results, if a kill interrupted it
        done = finished(out, RUN_METRICS)  # finished by the process whose lock we waited for; or damaged: moved aside
        if done is not None:
            return done
        return _run_here(ctx)


class RunNotFinished(ConfigError):
    """A run whose metrics were asked for has none: it is not finished (or not started)."""


def read_metrics(cfg: RunConfig, root: str | Path) -> dict:
    """The metrics of finished run `cfg` under `root`, read and never computed (nor its teacher trained).

    An unfinished run is a `RunNotFinished` naming it and its directory; a damaged or foreign metrics.json or
    params.json a `DamagedRunFile` naming the file (run_files.py; left where it is: only the runner moves it aside).
    """
    out = cfg.directory(root)
    metrics = read_results(out, RUN_METRICS).metrics
    if metrics is None:
        raise RunNotFinished(
            f"run {cfg.name} {cfg.network} ratio={cfg.ratio} seed={cfg.seed} is not finished: "
            f"{str(out)!r} has no {METRICS}"
        )
    return metrics


@dataclass(frozen=True)
class RunContext:
    """One run of `run_one` in this process: the run, where its directory is, and how it computes there (none of
    this is hashed: it cannot change a number). `wrap` and `writer` serve torchrun ranks (see `run_one`)."""

    cfg: RunConfig
    root: str | Path
    device: torch.device
    data_dir: str | Path | None = None
    progress: bool = False
    latency_batches: tuple[int, ...] = LATENCY_BATCHES
    on_epoch: Callable[[RunConfig, list[dict]], None] | None = None
    wrap: Callable[[nn.Module], nn.Module] | None = None
    writer: bool = True
    out: Path = field(init=False)  # cfg.directory(root)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", self.cfg.directory(self.root))


def _run_here(ctx: RunContext) -> dict:
    """The body of `run_one`, in the process that may write `ctx.out`."""
    cfg, out = ctx.cfg, ctx.out
    config = cfg.config()
    started = (out / PARAMS_FILE).exists()
    if started and read_run_file(out / PARAMS_FILE, PARAMS)["config"] != config:
        raise ConfigError(f"{out} holds another run's params.json (a hash collision?); refusing to overwrite it")
    # params.json is written once, when the run starts: a resumed run keeps the environment and thread count it
    # began with.
    if ctx.writer:
        threads = start_run(
            out,
            {
                "hash": out.name,
                "config": config,
                "label": cfg.name,
                "seed": cfg.seed,
                "environment": environment(ctx.device),
                "code": code_identity(code_packages(cfg.method)),
            },
            started,
        )
    else:  # a torchrun rank: rank 0 wrote params.json before the ranks met
        threads = recorded_threads(out) if started else torch.get_num_threads()
    # Every stage (the teacher, which keeps its own record, the pruner's search or soft training, the retraining and
    # the evaluation) computes with the run's recorded count, whatever this process was started with.
    with torch_threads(threads):
        return _compute(ctx)


def _compute(ctx: RunContext) -> dict:
    """The numbers of run `ctx.out`, whose params.json is written."""
    cfg, root, out, device, progress, writer = ctx.cfg, ctx.root, ctx.out, ctx.device, ctx.progress, ctx.writer
    config = cfg.config()
    data = load_data(cfg.data, ctx.data_dir)
    began = time.perf_counter()
    teacher, teacher_metrics = ensure_teacher(cfg, root, data, device, progress)
    teacher_seconds = time.perf_counter() - began
    teacher_sha256 = file_digest(cfg.teacher_directory(root) / "model.pt")  # which teacher: run_state.py compares
    pruned, prune_seconds = prune_once(cfg, out, teacher, data, device, progress)

    def log(history: list[dict]) -> None:
        if not writer:
            return
        write_log_csv(out / "log.csv", history)
        if ctx.on_epoch is not None:
            ctx.on_epoch(cfg, history)

    unpruned_macs = macs(cfg.arch())
    model, result = retrain(
        pruned,
        cfg.recipe,
        data,
        seed=cfg.seed,
        unpruned_macs=unpruned_macs,
        device=device,
        teacher=teacher,
        checkpoint_path=out / "checkpoint.pt",
        run_config=config,
        progress=progress,
        on_epoch=log,
        wrap=ctx.wrap,
    )
    history = result.pop("history")
    if writer:
        write_log_csv(out / "log.csv", history)
        save_model(out / "model.pt", pruned.arch, model)
    began = time.perf_counter()
    final = evaluate(model, data, device)  # the retrained net, measured again rather than read from the log
    eval_seconds = time.perf_counter() - began
    shape = tuple(data.test.images.shape[1:]) if hasattr(data.test, "images") else (3, 224, 224)
    latency = {f"latency_ms_batch{b}": latency_ms(model, shape, b, device) for b in ctx.latency_batches}
    pruned_macs = macs(pruned.arch)
    metrics = {
        "hash": out.name,
        "label": cfg.name,
        "dataset": cfg.data.dataset,
        "network": cfg.network,
        "method": cfg.method,
        "options": dataclasses.asdict(cfg.options),
        "ratio": cfg.ratio,
        "recipe": cfg.recipe.name,
        "seed": cfg.seed,
        "top1": final["top1"],
        "top5": final["top5"],
        "test_loss": final["loss"],
        "epochs": result["epochs"],
        **divergence(out, final, history, teacher_metrics),
        "unpruned_top1": teacher_metrics["top1"],
        "unpruned_top5": teacher_metrics["top5"],
        "acc_drop": teacher_metrics["top1"] - final["top1"],
        "arch": pruned.arch.to_dict(),
        "macs": pruned_macs,
        "params": params(pruned.arch),
        "unpruned_macs": unpruned_macs,
        "unpruned_params": params(cfg.arch()),
        "flop_ratio": pruned_macs / unpruned_macs,
        "flop_reduction_pct": 100 * (1 - pruned_macs / unpruned_macs),
        # a search can end outside its band: the report marks such a net instead of showing it at its target
        **band_record(get_pruner(cfg.method), cfg.options, cfg.ratio, pruned_macs / unpruned_macs),
        "teacher_hash": cfg.teacher_directory(root).name,
        "teacher_sha256": teacher_sha256,
        "prune_info": pruned.info,
        "timing": {
            "teacher_seconds": teacher_seconds,
            "teacher_train_seconds": teacher_metrics["wall_seconds"],
            "prune_seconds": prune_seconds,
            "retrain_seconds": result["train_seconds"],
            "eval_seconds": eval_seconds,
            **latency,
            "threads": torch.get_num_threads(),
            "pid": os.getpid(),
            "ddp_world_size": dist.get_world_size() if dist.is_initialized() else 1,
        },
        "environment": environment(device),
        "code": code_identity(code_packages(cfg.method)),
    }
    if writer:
        write_json(out / "metrics.json", metrics)
        clear_failure(out)
    return metrics

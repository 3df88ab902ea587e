"""Weights & Biases logging for sweep runs: config, per-epoch curves, final metrics; offline unless asked otherwise.

    >>> settings = WandbSettings(mode="offline", project="tas-bench")      # the CLI's default (or $WANDB_MODE)
    >>> tracker = WandbRun(settings, cfg, root="runs")                     # files under runs/wandb/offline-run-*
    >>> run_one(cfg, "runs", device=cpu, on_epoch=tracker.on_epoch); tracker.finish(metrics)

A W&B run is named `<label>-r<ratio>-<recipe>-s<seed>`, grouped by dataset/network/method/ratio, and carries the
run's config hash, so `tas-bench compare` can line it up with a local run directory. `sync` it later with
`wandb sync runs/wandb/offline-run-*`. The mode is passed in (the CLI reads $WANDB_MODE; library code does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasbench.errors import choice_error

MODES = ("offline", "online", "disabled")


@dataclass(frozen=True)
class WandbSettings:
    mode: str = "offline"
    project: str = "tas-bench"
    entity: str | None = None
    group_prefix: str = ""  # the sweep's name

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise choice_error("W&B mode", self.mode, MODES)


def summary_of(metrics: dict) -> dict:
    """The scalars of metrics.json, with the provenance fields a report needs lifted to the top level."""
    flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
    env, timing = metrics.get("environment", {}), metrics.get("timing", {})
    flat.update({k: env.get(k) for k in ("device", "torch", "git_commit", "git_dirty")})
    flat.update({k: v for k, v in timing.items() if k.startswith("latency") or k.endswith("seconds")})
    return flat


class WandbRun:
    """One sweep run's W&B run; `on_epoch` is the `run_one` callback, `finish` logs the final metrics."""

    def __init__(self, settings: WandbSettings, cfg, root: str | Path):
        self.settings = settings
        self.cfg = cfg
        self.root = Path(root)
        self.run = None
        self.logged = 0

    def _start(self):
        import wandb

        cfg = self.cfg
        directory = self.root / "wandb"  # W&B adds its own wandb/ below `dir`: runs/wandb/wandb/offline-run-*
        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=self.settings.project, entity=self.settings.entity, mode=self.settings.mode, dir=str(directory),
            group="/".join(str(p) for p in (cfg.data.dataset, cfg.network, cfg.name, cfg.ratio)),
            job_type=cfg.recipe.name, name=f"{cfg.name}-r{cfg.ratio}-{cfg.recipe.name}-s{cfg.seed}",
            config={"hash": cfg.directory(self.root).name, "label": cfg.name, "sweep": self.settings.group_prefix,
                    **cfg.config()},
            tags=[cfg.method, cfg.recipe.name, self.settings.group_prefix or "sweep"], reinit="finish_previous",
            # stdout carries the command's JSON: no W&B banners there, and no capture of the console
            settings=wandb.Settings(silent=True, console="off"),
        )  # fmt: skip
        return self.run

    def on_epoch(self, cfg, history: list[dict]) -> None:
        run = self.run or self._start()
        for row in history[self.logged :]:  # only epochs not logged yet (a resumed run starts mid-way)
            run.log({f"retrain/{k}": v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        self.logged = len(history)

    def finish(self, metrics: dict) -> None:
        run = self.run or self._start()
        run.summary.update(summary_of(metrics))
        run.finish()
        self.run = None

"""Weights & Biases logging for sweep runs: config, per-epoch curves, final metrics; offline unless asked otherwise.

    >>> settings = WandbSettings(mode="offline", project="tas-bench")      # the CLI's default (or $WANDB_MODE)
    >>> tracker = WandbRun(settings, cfg, root="runs")                     # files under runs/wandb/ only
    >>> run_one(cfg, "runs", device=cpu, on_epoch=tracker.on_epoch); tracker.finish(metrics)

A W&B run is named `<label>-r<ratio>-<recipe>-s<seed>`, grouped by dataset/network/method/ratio, and carries the
run's config hash, so `tas-bench compare` can line it up with a local run directory. `sync` it later with
`wandb sync runs/wandb/wandb/offline-run-*`. What each W&B run was given (config, history, summary) is also written
as JSON into its own directory (`LOGGED`, e.g. `offline-run-*/tas-bench-logged.json`): `compare` reads that, not
W&B's private record format. The mode is passed in (the CLI reads $WANDB_MODE; library code does
not). Online mode that cannot start within `init_timeout` seconds (no network, no API key) falls back to offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasbench.bounds import check_fields
from tasbench.errors import choice_error, warn

MODES = ("offline", "online", "disabled")
LOGGED = "tas-bench-logged.json"  # beside the W&B run's own files: what this run sent to W&B


@dataclass(frozen=True)
class WandbSettings:
    mode: str = "offline"
    project: str = "tas-bench"
    entity: str | None = None
    group_prefix: str = ""  # the sweep's name
    init_timeout: float = 30.0  # seconds an online start may take before the run falls back to offline logging

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise choice_error("W&B mode", self.mode, MODES)
        check_fields(self, [("init_timeout", self.init_timeout > 0, "> 0 seconds (the W&B start timeout)")])


def summary_of(metrics: dict) -> dict:
    """The scalars of metrics.json, with the provenance fields a report needs lifted to the top level."""
    flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
    env, timing = metrics.get("environment", {}), metrics.get("timing", {})
    flat.update({k: env.get(k) for k in ("device", "torch", "git_commit", "git_dirty")})
    flat.update({k: v for k, v in timing.items() if k.startswith("latency") or k.endswith("seconds")})
    return flat


# Why online logging failed in this process, once it has: the process's next runs log offline at once instead of
# each waiting `init_timeout` for a server that did not answer (a cache of a failure, not configuration).
_online_failed: list[str] = []


class WandbRun:
    """One sweep run's W&B run; `on_epoch` is the `run_one` callback, `finish` logs the final metrics.

    W&B is a side channel: when it is unreachable or misconfigured in online mode (no API key, no network, a wrong
    base URL), the run logs offline and a one-line warning says how to upload it later; if even that fails, the run
    goes on without W&B. Results in the run directory never depend on it.
    """

    def __init__(self, settings: WandbSettings, cfg, root: str | Path):
        self.settings = settings
        self.cfg = cfg
        self.root = Path(root)
        self.run = None
        self.logged = 0
        self.broken = False  # W&B failed for this run; the run itself carries on
        self.record: dict = {}  # what was sent to W&B, written to LOGGED after every call

    def _init(self, mode: str):
        import wandb

        cfg = self.cfg
        directory = self.root / "wandb"  # W&B adds its own wandb/ below `dir`: runs/wandb/wandb/offline-run-*
        directory.mkdir(parents=True, exist_ok=True)
        keep_under(directory)
        group = "/".join(str(p) for p in (cfg.data.dataset, cfg.network, cfg.name, cfg.ratio))
        name = f"{cfg.name}-r{cfg.ratio}-{cfg.recipe.name}-s{cfg.seed}"
        config = {
            "hash": cfg.directory(self.root).name,
            "label": cfg.name,
            "sweep": self.settings.group_prefix,
            **cfg.config(),
        }
        run = wandb.init(
            project=self.settings.project,
            entity=self.settings.entity,
            mode=mode,
            dir=str(directory),
            group=group,
            job_type=cfg.recipe.name,
            name=name,
            config=config,
            tags=[cfg.method, cfg.recipe.name, self.settings.group_prefix or "sweep"],
            reinit="finish_previous",
            # stdout carries the command's JSON: no W&B banners there, and no capture of the console
            settings=wandb.Settings(silent=True, console="off", init_timeout=self.settings.init_timeout),
        )
        self.record = {
            "id": run.id,
            "name": name,
            "group": group,
            "project": self.settings.project,
            "mode": mode,
            "config": config,
            "history": [],
            "summary": {},
            "complete": False,
        }
        return run

    def _write_record(self) -> None:
        """What this W&B run was sent so far, into its own directory (atomically: a reader sees a whole file)."""
        from tasbench.atomic import write_json  # imports torch: not at the top, `tas-bench --help` must not wait for it

        write_json(Path(self.run.settings.sync_dir) / LOGGED, self.record)

    def _start(self):
        mode = self.settings.mode
        if mode == "online" and not _online_failed:
            try:
                self.run = self._init("online")
                return self.run
            except Exception as e:  # noqa: BLE001 (wandb raises CommError, UsageError, timeouts, OSError...)
                _online_failed.append(_first_line(e))
                fell_back = True
        else:
            fell_back = mode == "online"
        try:
            self.run = self._init("offline")
        except Exception as e:  # noqa: BLE001
            self.broken = True
            warn(f"W&B failed ({_first_line(e)}); run {self.cfg.directory(self.root)} goes on without W&B")
            return None
        if fell_back:
            warn(
                f"W&B unreachable or misconfigured in online mode ({_online_failed[0]}); logged offline instead. "
                f"Results are in {self.cfg.directory(self.root)}; log them to W&B later with: wandb sync "
                f"{self.run.settings.sync_dir}"
            )
        return self.run

    def on_epoch(self, cfg, history: list[dict]) -> None:
        run = self.run or (None if self.broken else self._start())
        if run is None:
            return
        try:
            for row in history[self.logged :]:  # only epochs not logged yet (a resumed run starts mid-way)
                logged = {f"retrain/{k}": v for k, v in row.items() if k != "epoch"}
                run.log(logged, step=int(row["epoch"]))
                self.record["history"].append({"_step": int(row["epoch"]), **logged})
            self._write_record()
        except Exception as e:  # noqa: BLE001 (a logging failure must not stop training)
            self._give_up(e)
        self.logged = len(history)

    def finish(self, metrics: dict) -> None:
        run = self.run or (None if self.broken else self._start())
        if run is None:
            return
        try:
            run.summary.update(summary_of(metrics))
            self.record["summary"] = summary_of(metrics)
            self._write_record()
            run.finish()
            self.record["complete"] = True
            self._write_record()
        except Exception as e:  # noqa: BLE001
            self._give_up(e)
        self.run = None

    def _give_up(self, e: Exception) -> None:
        warn(f"W&B logging failed ({_first_line(e)}); run {self.cfg.directory(self.root)} goes on without W&B")
        self.broken, self.run = True, None


def keep_under(directory: Path) -> None:
    """Everything a sweep writes stays under its root: W&B's service writes its debug logs to its cache directory
    (~/.cache/wandb/logs/core-debug-*.log) and stages artifacts in its data directory (~/.local/share/wandb), so
    both go below `directory` unless the user named them. Set before the service starts: it keeps the environment of
    its first start. The config directory is left alone: W&B only reads it there (a self-hosted base URL, say)."""
    for name, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        os.environ.setdefault(name, str(directory / sub))


def _first_line(e: Exception) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:200]

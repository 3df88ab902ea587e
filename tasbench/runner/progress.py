"""The sweep's overall progress bar: runs done of the total, what is running, and an ETA.

The bar counts estimated work (multiply-accumulates, from cost.py), not jobs: a teacher or a TAS search weighs
what it costs, so tqdm's rate (estimated work per second, measured as jobs finish) gives an ETA that adapts to
this machine. A sequential sweep shows each run's own training bar under it; worker processes show only this one.

    sweep 7/18 runs  41%|████▏     | run: TAS resnet20 ratio=0.5 seed=1 [03:12<04:35]

A thread redraws it every second, so the elapsed time and the ETA move while a long run trains.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm

FORMAT = "sweep {done}/{runs} runs {{percentage:3.0f}}%|{{bar:20}}| {running} [{{elapsed}}<{{remaining}}]"


@dataclass
class SweepBar:
    """What the executors tell the bar: a job started, a job ended (with its estimated cost); log lines."""

    bar: tqdm | None  # None: progress is off, lines go to `log` as they are
    log: Callable[[str], None]
    runs: int
    workers: int = 1  # jobs beyond this many are queued, not running
    done: int = 0
    running: list[str] = field(default_factory=list)

    def started(self, what: str) -> None:
        self.running.append(what)
        self._show()

    def finished(self, what: str, cost: float, is_run: bool) -> None:
        if what in self.running:
            self.running.remove(what)
        self.done += is_run
        if self.bar is not None:
            self.bar.update(cost)
        self._show()

    def write(self, line: str) -> None:
        """A log line printed above the bar (which is redrawn below it)."""
        if self.bar is None:
            self.log(line)
        else:
            with tqdm.external_write_mode(file=sys.stderr):
                self.log(line)

    def _show(self) -> None:
        if self.bar is None:
            return
        running = min(len(self.running), self.workers)
        now = self.running[0] if len(self.running) == 1 else f"{running} running" if self.running else ""
        if len(self.running) > running:
            now += f", {len(self.running) - running} queued"
        # Written into the format itself: tqdm puts a comma before a postfix.
        now = now.replace("{", "{{").replace("}", "}}")
        self.bar.bar_format = FORMAT.format(done=self.done, runs=self.runs, running=now)
        self.bar.refresh()


@contextmanager
def sweep_bar(
    total_cost: float, runs: int, enabled: bool, log: Callable[[str], None], workers: int = 1
) -> Iterator[SweepBar]:
    """The overall bar over `total_cost` units of work for `runs` runs (off when `enabled` is False)."""
    if not enabled:
        yield SweepBar(None, log, runs, workers)
        return
    # smoothing=0: the ETA uses the mean rate of the whole sweep, since jobs end seconds or hours apart.
    bar = tqdm(
        total=max(total_cost, 1.0),
        bar_format=FORMAT.format(done=0, runs=runs, running=""),
        file=sys.stderr,
        dynamic_ncols=True,
        position=0,
        smoothing=0,
    )
    state = SweepBar(bar, log, runs, workers)
    state._show()
    stop = threading.Event()

    def redraw() -> None:
        while not stop.wait(1.0):
            bar.refresh()

    ticker = threading.Thread(target=redraw, name="sweep-progress", daemon=True)
    ticker.start()
    try:
        yield state
    finally:
        stop.set()
        ticker.join()
        bar.close()

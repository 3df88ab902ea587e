"""A measured throughput file (`tas-bench bench gpu --out FILE`) as the dry run's speed: `sweep --dry-run
--throughput FILE` estimates each phase in GPU-hours of the machine that measured it instead of calibrating here.

Seconds per MAC of training net N = 1 / (its training images/s x 3 x MACs(N)) (one training image costs 3 forward
passes, cost.py); a pruned net is taken at its unpruned net's rate (small nets use a GPU less well: the estimate
errs long), a net not measured at the rate of the measured one nearest in MACs. A searching pruner's phase (pass
cost above 1: TAS) is timed by the measured search step instead: seconds = its images / search images/s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from tasbench.errors import ConfigError
from tasbench.flops import macs
from tasbench.runner.cost import TRAIN_PASS
from tasbench.runner.experiment import RunConfig
from tasbench.untrusted import THROUGHPUT_JSON, read_text

FORMAT = "tas-bench-throughput/1"


def read_throughput(path: str | Path) -> dict:
    """The throughput file at `path`, checked: its format and, per network, positive finite MACs and images/s."""
    text = read_text(path, THROUGHPUT_JSON)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"throughput file {str(path)!r} is not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{str(path)!r} is not a throughput file (format {got!r}, expected {FORMAT!r})")
    nets = data.get("networks")
    if not isinstance(nets, dict) or not nets:
        raise ConfigError(f"throughput file {str(path)!r} measures no networks")
    for name, row in nets.items():
        for key in ("macs", "train_eager_images_per_s", "search_eager_images_per_s"):
            value = row.get(key) if isinstance(row, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"throughput file {str(path)!r}: networks.{name}.{key} is {value!r}, expected a positive number"
                )
    return data


def measured_rates(runs: list[RunConfig], data: dict, mode: str = "eager") -> tuple[dict, str]:
    """(network, ratio) -> s/MAC (ratio 1.0: the unpruned net), (network, "search") -> seconds per search image,
    for the nets of `runs`, and a line saying where they come from."""
    nets = data["networks"]
    table: dict = {}
    borrowed = set()
    for cfg in runs:
        full = macs(cfg.arch())
        name = cfg.network if cfg.network in nets else min(nets, key=lambda n: abs(math.log(nets[n]["macs"] / full)))
        if name != cfg.network:
            borrowed.add(f"{cfg.network} at {name}'s rate")
        row = nets[name]
        rate = 1 / (row.get(f"train_{mode}_images_per_s", row["train_eager_images_per_s"]) * TRAIN_PASS * row["macs"])
        table[cfg.network, 1.0] = table[cfg.network, cfg.ratio] = rate
        table[cfg.network, "search"] = full / row["macs"] / row["search_eager_images_per_s"]  # MACs-scaled
    source = f"measured on {data.get('device', '?')} (torch {data.get('torch', '?')}, batch {data.get('batch_size')})"
    if borrowed:
        source += "; " + ", ".join(sorted(borrowed))
    return table, source

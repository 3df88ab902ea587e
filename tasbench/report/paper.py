"""The numbers reported in the TAS paper (and the methods it compares with), shipped as package data.

`tasbench/paper` links to `results/paper/`, so an installed tas-bench finds the CSV from any working directory::

    >>> paper = read_paper(PACKAGED)
    >>> len(paper), paper.loc[11, ["network", "method", "pruned_acc", "flops", "source"]].tolist()
    (35, ['resnet110', 'TAS', 94.33, 119000000.0, 'seed (accuracy and GFLOPs); drop and pct recalled'])

Each row's `source` says how sure it is (`seed`: checked against the paper's summary; `secondary`: quoted by a
secondary text; `recalled`: not checked; `released shape`: FLOPs counted on the authors' released net, accuracy
unknown) and its `note` what it was cross-checked against. A row may lack the accuracy, never the FLOPs.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from tasbench import installation
from tasbench.errors import ConfigError
from tasbench.untrusted import PAPER_CSV, read_bytes

PACKAGED = installation.PAPER_CSV
COLUMNS = ["dataset", "network", "method", "pruned_acc", "acc_drop", "flops", "flops_pruned_pct", "source", "note"]
NUMERIC = ("pruned_acc", "acc_drop", "flops", "flops_pruned_pct")


def read_paper(path: str | Path | None) -> pd.DataFrame:
    """The paper's rows from `path`, checked: every column present, numbers where numbers belong, FLOPs in each
    row. `None` gives no rows (`tas-bench report --paper none`)."""
    if path is None:
        return pd.DataFrame(columns=COLUMNS)
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"paper results {str(path)!r} is a directory; give the CSV file (or --paper none)")
    if not path.exists():
        raise ConfigError(
            f"paper results {str(path)!r} do not exist (tas-bench ships {PACKAGED.name}; "
            f"--paper none leaves the paper's rows out)"
        )
    data = read_bytes(path, PAPER_CSV)  # a FIFO or device is refused here, not read by pandas
    try:
        paper = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise ConfigError(f"paper results {str(path)!r} are not a readable CSV file ({reason})") from None
    missing = [c for c in COLUMNS if c not in paper.columns]
    if missing:
        raise ConfigError(f"paper results {str(path)!r} lack column {missing[0]!r}; expected {COLUMNS}")
    for column in NUMERIC:
        numbers = pd.to_numeric(paper[column], errors="coerce")
        bad = paper[column][numbers.isna() & paper[column].notna()]
        if len(bad):
            raise ConfigError(
                f"paper results {str(path)!r}, line {bad.index[0] + 2}: {column} {bad.iloc[0]!r} is not a number"
            )
        paper[column] = numbers
    if paper["flops"].isna().any():
        line = int(paper.index[paper["flops"].isna()][0]) + 2
        raise ConfigError(f"paper results {str(path)!r}, line {line}: no flops (every paper row needs its FLOPs)")
    return paper.fillna({"note": "", "source": ""})

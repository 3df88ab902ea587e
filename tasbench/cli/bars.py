"""Progress bars an interrupted command leaves behind, closed before its one closing line."""

import sys


def close_bars() -> None:
    """Close the progress bars an interrupt cut short: else each draws itself once more when it is collected, after
    (and over) the one line that says what happened."""
    tqdm = sys.modules.get("tqdm")  # no bar was drawn without it
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()

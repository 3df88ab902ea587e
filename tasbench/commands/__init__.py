"""The runner's subcommands (`sweep`, `report`, `compare`, `regress`), one module each; `cli.py` only registers them.

Each module has `register(subparsers)`, which adds its parser and sets `command` to a handler that takes the parsed
arguments and returns one JSON-ready dict (or raises `ConfigError` for bad input), like the commands in `cli.py`.
`tas-bench --help` registers them all, so a module imports torch, pandas or wandb inside its handler, never at its
top (tests/test_cli_start.py checks `--help` and each command's `--help` in a fresh interpreter).
"""

import sys


def close_bars() -> None:
    """Close the progress bars an interrupt cut short: else each draws itself once more when it is collected, after
    (and over) the one line that says what happened."""
    tqdm = sys.modules.get("tqdm")  # no bar was drawn without it
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


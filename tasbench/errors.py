"""The one error type for bad user input (and the one way to print a warning).

Library code raises `ConfigError` with a message that names the bad value and what is allowed; the CLI prints that
message as one line and exits with status 2 (no traceback). Anything else that escapes is a bug. `Interrupted` is
how SIGTERM stops a command: as Ctrl-C does (a KeyboardInterrupt), also one line, exit status 128 + the signal.
"""

import signal
import sys


class ConfigError(ValueError):
    """Bad input from a user: a name, a number, a file or a directory. The message is shown as-is."""


def choice_error(what: str, value: object, allowed: "tuple | list") -> ConfigError:
    """Build the standard "unknown X" error: `choice_error("network", "resnet57", ["resnet20", ...])`."""
    return ConfigError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


class StorageError(ConfigError):
    """The results directory cannot be written (disk full, read-only, no permission); nothing was half-written.

    Not bad input as such, but the same one clear line and exit status 2: the user has one thing to fix.
    """


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised where the command is, as Ctrl-C raises KeyboardInterrupt: both stop it the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_interrupted(signum: int, frame: object) -> None:
    """A signal handler: `signal.signal(signal.SIGTERM, raise_interrupted)`."""
    raise Interrupted(signum)


def interrupt_signal(e: KeyboardInterrupt) -> signal.Signals:
    """The signal behind `e`: SIGTERM through `raise_interrupted`, else Ctrl-C's SIGINT."""
    return signal.Signals(getattr(e, "signum", signal.SIGINT))


def warn(message: str) -> None:
    """One `tas-bench: warning: ...` line on stderr; the command goes on."""
    from tqdm import tqdm  # here: errors.py is imported by everything, tqdm only needed once there is a warning

    # tqdm.write: above the sweep's progress bars, if any are drawn (a plain print would land inside the bar line).
    tqdm.write(f"tas-bench: warning: {message}", file=sys.stderr)

"""The one error type for bad user input.

Library code raises `ConfigError` with a message that names the bad value and what is allowed; the CLI prints that
message as one line and exits with status 2 (no traceback). Anything else that escapes is a bug.
"""


class ConfigError(ValueError):
    """Bad input from a user: a name, a number, a file or a directory. The message is shown as-is."""


def choice_error(what: str, value: object, allowed: "tuple | list") -> ConfigError:
    """Build the standard "unknown X" error: `choice_error("network", "resnet57", ["resnet20", ...])`."""
    return ConfigError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


class StorageError(ConfigError):
    """The results directory cannot be written (disk full, read-only, no permission); nothing was half-written.

    Not bad input as such, but the same one clear line and exit status 2: the user has one thing to fix.
    """

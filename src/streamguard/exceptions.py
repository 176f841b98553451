"""One root for every error StreamGuard raises on purpose."""

from __future__ import annotations


class StreamguardError(Exception):
    """Base of all StreamGuard errors."""


class InputFileError(StreamguardError):
    """A file given on the command line cannot be used (missing, unreadable, wrong layout).

    Operator action: fix the file named in the message; the command exits non-zero with one line.
    """


class BrokerError(StreamguardError):
    """The local Kafka broker could not be fetched, started or stopped."""


def error_line(command: str, message: object) -> str:
    """The one line a command ends with when it fails: `streamguard <command>: error: <message>`.

    Every command names itself, as argparse names a subcommand in its usage errors
    (`streamguard audit: error: the following arguments are required: ...`), so a cron mail or
    a CI log says which of several commands failed.
    """
    return f"streamguard {command}: error: {message}"


def warning_line(command: str, message: object) -> str:
    """A warning on stderr, named as `error_line` names an error."""
    return f"streamguard {command}: warning: {message}"

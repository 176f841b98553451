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

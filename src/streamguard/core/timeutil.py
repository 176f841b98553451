"""ISO-8601 UTC timestamps as the contract writes them, parsed without reading the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ("format_ts", "parse_ts")


# Timestamps parsed lately: an event's `ts` is read by the worker and again by the engine's
# schema check, and a search's window usually ends at its `ts`. Starts over when full.
_PARSED: Final[dict[str, float]] = {}
PARSED_LIMIT: Final = 4096


def parse_ts(value: object) -> float | None:
    """Return POSIX seconds for an ISO-8601 timestamp, or None when it is not one.

    Accepts the contract's `2025-02-10T18:03:11Z` with or without fractions, an explicit offset,
    and a space instead of `T`. A timestamp without any zone is read as UTC: every ALPR export we
    have seen writes UTC without saying so.
    """
    if type(value) is str:
        found = _PARSED.get(value)
        if found is not None:
            return found
        parsed = _parse(value)
        if parsed is not None:
            if len(_PARSED) >= PARSED_LIMIT:
                _PARSED.clear()
            _PARSED[value] = parsed
        return parsed
    return _parse(value)


def _parse(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        # Python 3.11 reads the contract's `...Z` form directly; this is the hot path.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_ts(epoch_seconds: float) -> str:
    """Format POSIX seconds as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")

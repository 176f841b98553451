"""Out-of-state and federal search attempts on an owner's network, counted per owner. Pure.

A search is decided, and counted, on the partition of its requester; its attempts on other
states' owners are counted on the partition of each owner. The deciding worker sends one small
record per (owner, hour) per batch to the internal attempts topic, keyed by owner, and the worker
that owns that owner's partition adds it to the owner's hourly counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamguard import serde
from streamguard.core.models import Agency
from streamguard.stream.outputs import Out

__all__ = ("AttemptRecord", "BatchAttempts", "attempt_kind", "read_attempt")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """`n` attempts on `owner`'s network in the hour starting at `start`; `ts` the newest."""

    owner: str
    start: int
    n: int
    ts: float


def attempt_kind(requester: Agency, owner: Agency) -> str | None:
    """`federal` or `out_of_state` when a search by `requester` on `owner`'s network is an
    attempt the owner's counter counts; None for the owner itself and in-state requesters."""
    if owner.agency_id == requester.agency_id:
        return None
    if requester.is_federal:
        return "federal"
    return "out_of_state" if requester.state != owner.state else None


class BatchAttempts:
    """The attempts one batch noted, one record per (owner, hour)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # (owner, hour) -> (n, newest)

    def add(self, owner_id: str, hour: int, ts: float) -> None:
        n, newest = self._seen.get((owner_id, hour), (0, ts))
        self._seen[(owner_id, hour)] = (n + 1, max(newest, ts))

    def messages(self) -> list[Out]:
        """The records to send, keyed by owner: whichever worker owns that owner's partition
        of the attempts topic then counts them."""
        return [
            Out("attempts", owner, {"owner": owner, "start": hour, "n": n, "ts": ts})
            for (owner, hour), (n, ts) in self._seen.items()
        ]


def read_attempt(value: bytes | None) -> AttemptRecord | None:
    """The record in a message of the attempts topic; None if it is not one."""
    try:
        record = serde.loads(value or b"")
        owner, start, n, ts = record["owner"], record["start"], record["n"], record["ts"]
    except (ValueError, TypeError, KeyError):
        return None
    if (
        not isinstance(owner, str)
        or not isinstance(start, int)
        or not isinstance(n, int)
        or not isinstance(ts, int | float)
    ):
        return None
    return AttemptRecord(owner, start, n, float(ts))

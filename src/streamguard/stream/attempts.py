"""Out-of-state and federal search attempts on an owner's network, counted per owner. Pure.

An attempt is a search whose verdict on the owner's network says the owner's law forbids this
requester (`OUT_OF_STATE_RECIPIENT`, `FEDERAL_RECIPIENT`); a search the law allows is none.

A search is decided, and counted, on the partition of its requester; its attempts on other
states' owners are counted on the partition of each owner. The deciding worker sends one small
record per (owner, hour) per batch to the internal attempts topic, keyed by owner, and the worker
that owns that owner's partition adds it to the owner's hourly counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamguard import serde
from streamguard.core import codes
from streamguard.core.models import NetworkVerdict
from streamguard.stream.outputs import Out

__all__ = ("AttemptRecord", "BatchAttempts", "attempt_kind", "read_attempt")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """`n` attempts on `owner`'s network in the hour starting at `start`; `ts` the newest."""

    owner: str
    start: int
    n: int
    ts: float


def attempt_kind(verdict: NetworkVerdict) -> str | None:
    """`federal` or `out_of_state` when the verdict on an owner's network is an attempt its
    counter counts: one the owner's law forbids (`FEDERAL_RECIPIENT`, `OUT_OF_STATE_RECIPIENT`).
    None otherwise: an out-of-state search on an owner whose law allows it (TX, IL, GA) is no
    attempt to count or alert on, whether or not the owner shared."""
    kind = None
    for reason in verdict.reasons:
        if reason.code == codes.FEDERAL_RECIPIENT:
            return "federal"
        if reason.code == codes.OUT_OF_STATE_RECIPIENT:
            kind = "out_of_state"
    return kind


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

"""Out-of-state and federal search attempts on an owner's network, counted per owner. Pure.

An attempt is a search whose verdict on the owner's network says the owner's law forbids this
requester (`OUT_OF_STATE_RECIPIENT`, `FEDERAL_RECIPIENT`); a search the law allows is none.

A search is decided, and counted, on the partition of its requester; its attempts on other
states' owners are counted on the partition of each owner. The deciding worker sends one small
record per (owner, hour) per batch to the internal attempts topic, keyed by owner, and the worker
that owns that owner's partition adds it to the owner's hourly counter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from streamguard import serde
from streamguard.core import codes
from streamguard.core.models import NetworkVerdict
from streamguard.stream.outputs import Out

__all__ = ("AttemptRecord", "Attempts", "BatchAttempts", "attempt_kind", "read_attempt")


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


Attempts = tuple[tuple[str, str], ...]  # (owner id, attempt kind) of one search's networks


class BatchAttempts:
    """The attempts one batch noted, one record per (owner, hour).

    A statewide or national search attempts the same owners as every search of its requester
    class (a shared spread, less the requester's own network): those are noted once per
    (owners, hour, own network) with how many searches made them, and spread over the owners
    when the batch ends, instead of once per owner per search."""

    __slots__ = ("_groups", "_left_out", "_seen")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # (owner, hour) -> (n, newest)
        # (id of owners, hour) -> (owners, their ids, n, newest)
        self._groups: dict[tuple[int, int], tuple[Attempts, tuple[str, ...], int, float]] = {}
        # (hour, (owner, kind)) -> how many grouped searches left that attempt out
        self._left_out: Counter[tuple[int, tuple[str, str]]] = Counter()

    def add(self, owner_id: str, hour: int, ts: float) -> None:
        n, newest = self._seen.get((owner_id, hour), (0, ts))
        self._seen[(owner_id, hour)] = (n + 1, max(newest, ts))

    def add_group(
        self,
        owners: Attempts,
        ids: tuple[str, ...],
        hour: int,
        ts: float,
        without: tuple[str, str] | None,
    ) -> None:
        """One attempt on each of `owners` (whose ids are `ids`; both shared, not copied) but
        the attempt `without`, which must be one of them."""
        key = (id(owners), hour)
        found = self._groups.get(key)
        if found is None:
            self._groups[key] = (owners, ids, 1, ts)
        else:
            self._groups[key] = (owners, ids, found[2] + 1, max(found[3], ts))
        if without is not None:
            self._left_out[(hour, without)] += 1

    def flush_groups(self) -> dict[tuple[str, str], int]:
        """Spread the grouped attempts over their owners; returns how many attempts of each
        (owner, kind) they held (for the owner-attempt metric)."""
        by_hour: dict[int, list[tuple[Attempts, tuple[str, ...], int, float]]] = {}
        for (_, hour), group in self._groups.items():
            by_hour.setdefault(hour, []).append(group)
        totals: Counter[tuple[str, str]] = Counter()
        seen = self._seen
        for hour, groups in by_hour.items():
            counts: Counter[tuple[str, str]] = Counter()
            newest: dict[str, float] = {}
            for owners, ids, n, ts in sorted(groups, key=lambda group: group[3]):
                for _ in range(n):
                    counts.update(owners)  # counted in C: thousands of owners per group
                newest.update(dict.fromkeys(ids, ts))  # in ts order: the newest stays
            for (at, pair), n in self._left_out.items():
                if at == hour:
                    counts[pair] -= n
            for pair, n in counts.items():
                if n <= 0:
                    continue
                totals[pair] += n
                key = (pair[0], hour)
                had = seen.get(key)
                ts = newest[pair[0]]
                seen[key] = (n, ts) if had is None else (had[0] + n, max(had[1], ts))
        self._groups.clear()
        self._left_out.clear()
        return dict(totals)

    def messages(self) -> list[Out]:
        """The records to send, keyed by owner: whichever worker owns that owner's partition
        of the attempts topic then counts them (after `flush_groups`)."""
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

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
from itertools import repeat
from operator import add

from streamguard import serde
from streamguard.core import codes
from streamguard.core.models import NetworkVerdict
from streamguard.stream.outputs import Out

__all__ = (
    "AttemptRecord",
    "AttemptSet",
    "AttemptSets",
    "Attempts",
    "BatchAttempts",
    "attempt_kind",
    "read_attempt",
)


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


class AttemptSet:
    """The attempts every search of one shared spread makes: its (owner, kind) pairs and their
    owner ids. Spreads whose attempts are equal (requesters of one state and class, whatever
    their purpose) share the two tuples (`AttemptSets`), so a batch counts each once."""

    __slots__ = ("ids", "pairs")

    def __init__(self, pairs: Attempts, ids: tuple[str, ...]) -> None:
        self.pairs = pairs
        self.ids = ids


class AttemptSets:
    """Interns the attempts of spreads by value (bounded: a full table starts over, which only
    loses sharing)."""

    __slots__ = ("_known",)

    LIMIT = 1_024

    def __init__(self) -> None:
        self._known: dict[Attempts, AttemptSet] = {}

    def of(self, pairs: Attempts) -> AttemptSet:
        """An `AttemptSet` of its own (it names one spread's searches in a batch) over the
        interned tuples of `pairs`."""
        shared = self._known.get(pairs)
        if shared is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            shared = self._known[pairs] = AttemptSet(pairs, tuple([o for o, _ in pairs]))
        return AttemptSet(shared.pairs, shared.ids)


@dataclass(slots=True)
class _Group:
    """The searches of one batch and hour whose spreads attempt the same pairs."""

    attempts: AttemptSet
    n: int
    newest: float
    # id of each spread's AttemptSet -> (its newest ts, order noted, the set: kept alive)
    spreads: dict[int, tuple[float, int, AttemptSet]]


class BatchAttempts:
    """The attempts one batch noted, one record per (owner, hour).

    A statewide or national search attempts the same owners as every search of its requester
    class (a shared spread, less the requester's own network): those are noted once per
    (attempted pairs, hour) with how many searches made them, and spread over the owners when
    the batch ends, one pass per distinct set of pairs instead of once per owner per search."""

    __slots__ = ("_groups", "_left_out", "_noted", "_seen")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # (owner, hour) -> (n, newest)
        # (id of the interned pairs, hour) -> the searches that attempted them
        self._groups: dict[tuple[int, int], _Group] = {}
        # (hour, (owner, kind)) -> how many grouped searches left that attempt out
        self._left_out: Counter[tuple[int, tuple[str, str]]] = Counter()
        self._noted = 0

    def add(self, owner_id: str, hour: int, ts: float) -> None:
        n, newest = self._seen.get((owner_id, hour), (0, ts))
        self._seen[(owner_id, hour)] = (n + 1, max(newest, ts))

    def add_group(
        self, attempts: AttemptSet, hour: int, ts: float, without: tuple[str, str] | None
    ) -> None:
        """One attempt on each of `attempts`' pairs but the attempt `without`, which must be
        one of them. `attempts` stands for one spread (its pairs may be shared)."""
        key = (id(attempts.pairs), hour)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(attempts, 0, ts, {})
        group.n += 1
        group.newest = max(group.newest, ts)
        spread = group.spreads.get(id(attempts))
        if spread is None:
            group.spreads[id(attempts)] = (ts, self._noted, attempts)
            self._noted += 1
        elif ts > spread[0]:
            group.spreads[id(attempts)] = (ts, spread[1], attempts)
        if without is not None:
            self._left_out[(hour, without)] += 1

    def flush_groups(self) -> dict[tuple[str, str], int]:
        """Spread the grouped attempts over their owners; returns how many attempts of each
        (owner, kind) they held (for the owner-attempt metric).

        Records come out in the order of a pass over every spread by its newest search (ties:
        the spread noted first), each adding the owners not seen yet: a set of pairs shared by
        several spreads takes the place of the first of them."""
        by_hour: dict[int, list[_Group]] = {}
        for (_, hour), group in self._groups.items():
            by_hour.setdefault(hour, []).append(group)
        totals: dict[tuple[str, str], int] = {}
        seen = self._seen
        for hour, groups in by_hour.items():
            counts: dict[tuple[str, str], int] = {}
            get = counts.get
            for group in sorted(groups, key=_first_place):
                pairs = group.attempts.pairs
                # counts[pair] += n for every pair, in C: thousands of owners per group
                counts.update(
                    zip(pairs, map(add, map(get, pairs, repeat(0)), repeat(group.n)), strict=True)
                )
            newest: dict[str, float] = {}
            for group in sorted(groups, key=lambda g: g.newest):
                newest.update(dict.fromkeys(group.attempts.ids, group.newest))  # newest stays
            for (at, pair), n in self._left_out.items():
                if at == hour:
                    counts[pair] -= n
            total_of, seen_at = totals.get, seen.get
            for pair, n in counts.items():
                if n <= 0:
                    continue
                totals[pair] = total_of(pair, 0) + n
                owner = pair[0]
                key = (owner, hour)
                had = seen_at(key)
                ts = newest[owner]
                seen[key] = (n, ts) if had is None else (had[0] + n, max(had[1], ts))
        self._groups.clear()
        self._left_out.clear()
        return totals

    def messages(self) -> list[Out]:
        """The records to send, keyed by owner: whichever worker owns that owner's partition
        of the attempts topic then counts them (after `flush_groups`)."""
        return [
            Out("attempts", owner, {"owner": owner, "start": hour, "n": n, "ts": ts})
            for (owner, hour), (n, ts) in self._seen.items()
        ]


def _first_place(group: _Group) -> tuple[float, int]:
    """Where a group's owners first appear in a pass over the spreads by newest search."""
    return min((ts, noted) for ts, noted, _ in group.spreads.values())


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

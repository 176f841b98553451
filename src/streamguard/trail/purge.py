"""Deletion proofs: retention purges recorded in the trail, and what a series of them shows.

Pure. When a downstream store (the ALPR vendor's database, an evidence system) deletes data
for retention, it sends a `retention_purge` event; the worker decides it against the owner's
retention limit (the tighter of the statute's and the owner's `retention_days`) and writes
one audit record of kind `retention_purge`. Checkpointed and witnessed like every record, a
series of them turns "no data was kept past N days" into something `streamguard
verify-retention` checks: between two consecutive purges p and q of a store, the oldest data
present was never older than q's time minus p's cutoff (docs/transparency.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from streamguard.core import codes
from streamguard.core.timeutil import format_ts, parse_ts

__all__ = (
    "PURGE_KIND",
    "Purge",
    "RetentionGap",
    "audit_fields",
    "judge",
    "parse_purge",
    "retention_gaps",
)

PURGE_KIND: Final = "retention_purge"
_DAY: Final = 86400.0
_HEX: Final = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Purge:
    """One downstream deletion: every record of `owner` in `store` older than `deleted_before`
    was deleted at `purged_at` (`records` of them; `digest`: the store's SHA-256 of the ids)."""

    purge_id: str
    owner: str
    store: str
    purged_at: float
    deleted_before: float
    records: int | None
    digest: str | None
    actor: Mapping[str, Any]


def parse_purge(event: Mapping[str, Any]) -> Purge | str:
    """The purge an event describes, or why it is not one (SCHEMA_INVALID)."""
    if event.get("type") != PURGE_KIND:
        return f"type is not {PURGE_KIND}"
    purge_id, owner, store = event.get("purge_id"), event.get("agency_id"), event.get("store")
    for name, value in (("purge_id", purge_id), ("agency_id", owner), ("store", store)):
        if not isinstance(value, str) or not value.strip():
            return f"{name} is missing or not a string"
    purged_at, before = parse_ts(event.get("ts")), parse_ts(event.get("deleted_before"))
    if purged_at is None or before is None:
        return "ts and deleted_before must be ISO-8601 timestamps"
    if before > purged_at:
        return "deleted_before is later than the purge itself"
    records = event.get("records_deleted")
    if records is not None and (
        isinstance(records, bool) or not isinstance(records, int) or records < 0
    ):
        return "records_deleted must be a non-negative integer"
    digest = event.get("digest")
    if digest is not None and not (
        isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX
    ):
        return "digest must be a SHA-256 hex digest"
    actor = event.get("actor")
    if actor is not None and not isinstance(actor, Mapping):
        return "actor must be an object"
    assert isinstance(purge_id, str) and isinstance(owner, str) and isinstance(store, str)
    return Purge(purge_id, owner, store, purged_at, before, records, digest, actor or {})


def judge(
    purge: Purge, limit: tuple[float, str, str] | None
) -> tuple[str, tuple[str, ...], str | None]:
    """(outcome, codes, why) against the owner's retention limit (seconds, citation, text).

    `purged`: the data kept until this purge was within the limit (or there is none);
    `purged_late`: the purge shows data older than the limit was still kept, RETENTION_EXCEEDED.
    """
    if limit is None:
        return "purged", (), None
    kept = purge.purged_at - purge.deleted_before
    if kept > limit[0]:
        why = (
            f"data up to {kept / _DAY:.2f} days old was kept until this purge; "
            f"{limit[1]} allows {limit[2]}"
        )
        return "purged_late", (codes.RETENTION_EXCEEDED,), why
    return "purged", (), None


def audit_fields(purge: Purge, limit: tuple[float, str, str] | None) -> dict[str, Any]:
    """The purge's own fields of its audit record (the decision fields are added by the caller)."""
    outcome, found, why = judge(purge, limit)
    return {
        "owner": purge.owner,
        "store": purge.store,
        "purged_at": format_ts(purge.purged_at),
        "deleted_before": format_ts(purge.deleted_before),
        "kept_days": round((purge.purged_at - purge.deleted_before) / _DAY, 4),
        "limit_days": round(limit[0] / _DAY, 4) if limit is not None else None,
        "limit": limit[1] if limit is not None else None,
        "records_deleted": purge.records,
        "digest": purge.digest,
        "requester": purge.actor.get("agency_id"),
        "user_id": purge.actor.get("user_id"),
        "outcome": outcome,
        "codes": list(found),
        "reason": why,
    }


@dataclass(frozen=True, slots=True)
class RetentionGap:
    """A stretch of time in which data older than the limit may have been kept."""

    store: str
    start: float
    end: float
    oldest_days: float
    why: str

    def __str__(self) -> str:
        return (
            f"store {self.store!r}, {format_ts(self.start)} to {format_ts(self.end)}: data up to "
            f"{self.oldest_days:.2f} days old may have been kept ({self.why})"
        )


def retention_gaps(
    records: Iterable[Mapping[str, Any]], owner: str, days: float, start: float, end: float
) -> tuple[list[Mapping[str, Any]], list[RetentionGap]]:
    """The owner's purge records (per store, by time) and every gap in [start, end].

    At a time t after purge p and before the store's next purge q, the oldest data left is at
    most t - p.deleted_before old, so the limit held on [p, q] iff q.purged_at - p.deleted_before
    <= days. Before a store's first purge in the window nothing is shown, and after its last
    one the limit holds only until p.deleted_before + days.
    """
    limit = days * _DAY
    purges: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("kind") == PURGE_KIND and record.get("owner") == owner:
            purges.setdefault(str(record.get("store")), []).append(record)
    found: list[Mapping[str, Any]] = []
    gaps: list[RetentionGap] = []
    if not purges:
        gaps.append(RetentionGap("*", start, end, float("inf"), "no purge of this owner recorded"))
    for store, items in sorted(purges.items()):
        series = sorted(
            ((parse_ts(r.get("purged_at")), parse_ts(r.get("deleted_before")), r) for r in items),
            key=lambda t: t[0] or 0.0,
        )
        valid = [
            (at, before, r) for at, before, r in series if at is not None and before is not None
        ]
        found.extend(r for _, _, r in valid)
        previous: tuple[float, float] | None = None
        for at, before, _ in valid:
            assert at is not None and before is not None
            if previous is not None and previous[0] < end and at > start:
                oldest = at - previous[1]
                if oldest > limit:
                    gaps.append(
                        RetentionGap(
                            store,
                            max(previous[0], start),
                            min(at, end),
                            oldest / _DAY,
                            "purges too far apart or cutoff too old",
                        )
                    )
            if at - before > limit and start <= at <= end:
                gaps.append(RetentionGap(store, at, at, (at - before) / _DAY, "a late purge"))
            previous = (at, before)
        first = valid[0][0] if valid else None
        if first is None or first > start:
            gaps.append(
                RetentionGap(
                    store,
                    start,
                    min(first or end, end),
                    float("inf"),
                    "no purge of this store before this time",
                )
            )
        if previous is not None and previous[1] + limit < end:
            gaps.append(
                RetentionGap(
                    store,
                    max(previous[1] + limit, start),
                    end,
                    (end - previous[1]) / _DAY,
                    "no purge since",
                )
            )
    return found, gaps

"""Retention purges: parsing, judging against the owner's limit, and gaps in a series."""

from __future__ import annotations

from typing import Any

import pytest

from streamguard.core import codes
from streamguard.core.timeutil import parse_ts
from streamguard.trail.purge import (
    PURGE_KIND,
    Purge,
    audit_fields,
    judge,
    parse_purge,
    retention_gaps,
)

DAY = 86400.0
LIMIT = (30 * DAY, "owner setting retention_days of ca-ventura-pd", "30 days")


def _ts(text: str) -> float:
    value = parse_ts(text)
    assert value is not None
    return value


def event(**change: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": PURGE_KIND,
        "purge_id": "p-1",
        "ts": "2026-03-01T02:00:00Z",
        "agency_id": "ca-ventura-pd",
        "store": "vendor-db",
        "deleted_before": "2026-01-31T02:00:00Z",
        "records_deleted": 1234,
        "digest": "ab" * 32,
        "actor": {"agency_id": "ca-ventura-pd", "user_id": "retention-job"},
    }
    return base | change


def test_a_purge_within_the_limit_is_recorded() -> None:
    purge = parse_purge(event())
    assert isinstance(purge, Purge)
    assert judge(purge, LIMIT) == ("purged", (), None)
    fields = audit_fields(purge, LIMIT)
    assert fields["kept_days"] == 29.0 and fields["limit_days"] == 30.0
    assert fields["deleted_before"].startswith("2026-01-31T02:00:00")
    assert (fields["store"], fields["records_deleted"], fields["user_id"]) == (
        "vendor-db",
        1234,
        "retention-job",
    )


def test_a_late_purge_is_retention_exceeded() -> None:
    purge = parse_purge(event(deleted_before="2026-01-15T00:00:00Z"))
    assert isinstance(purge, Purge)
    outcome, found, why = judge(purge, LIMIT)
    assert (outcome, found) == ("purged_late", (codes.RETENTION_EXCEEDED,))
    assert why is not None and "30 days" in why
    assert judge(purge, None) == ("purged", (), None)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"type": "plate_read"}, "type"),
        ({"purge_id": ""}, "purge_id"),
        ({"agency_id": 3}, "agency_id"),
        ({"ts": "yesterday"}, "ISO-8601"),
        ({"deleted_before": "2026-03-02T00:00:00Z"}, "later"),
        ({"records_deleted": -1}, "non-negative"),
        ({"records_deleted": True}, "non-negative"),
        ({"digest": "xyz"}, "SHA-256"),
        ({"actor": "me"}, "actor"),
    ],
)
def test_bad_purges_say_why(change: dict[str, Any], why: str) -> None:
    result = parse_purge(event(**change))
    assert isinstance(result, str) and why in result


def _record(at: str, before: str, store: str = "vendor-db") -> dict[str, Any]:
    return {
        "kind": PURGE_KIND,
        "owner": "ca-ventura-pd",
        "store": store,
        "purged_at": at,
        "deleted_before": before,
    }


def test_daily_purges_show_the_limit_held() -> None:
    records = [
        _record(f"2026-03-{d:02d}T02:00:00Z", f"2026-02-{d:02d}T02:00:00Z") for d in range(1, 28)
    ]
    found, gaps = retention_gaps(
        records, "ca-ventura-pd", 30, _ts("2026-03-02T00:00:00Z"), _ts("2026-03-20T00:00:00Z")
    )
    assert len(found) == 27 and gaps == []


def test_a_missed_purge_and_a_late_one_are_gaps() -> None:
    records = [
        _record("2026-03-01T02:00:00Z", "2026-02-01T02:00:00Z"),
        _record("2026-03-10T02:00:00Z", "2026-02-10T02:00:00Z"),  # 9 days after the last
        _record("2026-03-11T02:00:00Z", "2026-01-01T00:00:00Z"),  # cutoff far too old
    ]
    _, gaps = retention_gaps(
        records, "ca-ventura-pd", 30, _ts("2026-03-02T00:00:00Z"), _ts("2026-03-11T12:00:00Z")
    )
    whys = [g.why for g in gaps]
    assert "purges too far apart or cutoff too old" in whys
    assert "a late purge" in whys
    assert any("no purge since" in w for w in whys)
    assert "days old may have been kept" in str(gaps[0])


def test_no_purge_at_all_or_none_before_the_window() -> None:
    _, gaps = retention_gaps([], "ca-ventura-pd", 30, 0.0, DAY)
    assert [g.why for g in gaps] == ["no purge of this owner recorded"]
    records = [_record("2026-03-05T02:00:00Z", "2026-02-05T02:00:00Z")]
    _, gaps = retention_gaps(
        records, "ca-ventura-pd", 30, _ts("2026-03-01T00:00:00Z"), _ts("2026-03-06T00:00:00Z")
    )
    assert [g.why for g in gaps] == ["no purge of this store before this time"]

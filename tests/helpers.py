"""Test data for the pure core: a small registry spanning the states the law treats apart."""

from __future__ import annotations

from typing import Any

from streamguard.core.models import Agency
from streamguard.core.signing import sign_change
from streamguard.core.timeutil import parse_ts

NOW_TS = "2025-03-01T12:00:00Z"
NOW = parse_ts(NOW_TS)
assert NOW is not None
SECRET = b"test-secret-k1"
KEYS = {"k1": SECRET}

AGENCIES = (
    Agency("ca-ventura-county-so", "Ventura County Sheriff's Office", "CA", "county"),
    Agency("ca-oxnard-pd", "Oxnard Police Department", "CA", "local"),
    Agency("ca-uc-pd", "University of California Police", "CA", "campus"),
    Agency("ca-tribal-pd", "Example Band Tribal Police", "CA", "tribal"),
    Agency("ca-acme-security", "Acme Security LLC", "CA", "private"),
    Agency("tx-houston-pd", "Houston Police Department", "TX", "local"),
    Agency("tx-dallas-pd", "Dallas Police Department", "TX", "local"),
    Agency("tx-acme-repo", "Acme Repossession", "TX", "private"),
    Agency("us-ice-ero", "U.S. Immigration and Customs Enforcement ERO", "US", "federal"),
    Agency("us-fbi", "Federal Bureau of Investigation", "US", "federal"),
    Agency("il-mount-prospect-pd", "Mount Prospect Police Department", "IL", "local"),
    Agency("va-richmond-pd", "Richmond Police Department", "VA", "local"),
    Agency("wa-seattle-pd", "Seattle Police Department", "WA", "local"),
    Agency("nh-concord-pd", "Concord Police Department", "NH", "local"),
    Agency("me-portland-pd", "Portland Police Department", "ME", "local"),
    Agency("mn-st-louis-park-pd", "St. Louis Park Police Department", "MN", "local"),
    Agency("mt-billings-pd", "Billings Police Department", "MT", "local"),
    Agency("ar-conway-pd", "Conway Police Department", "AR", "local"),
    Agency("ne-omaha-pd", "Omaha Police Department", "NE", "local"),
    Agency("ut-provo-pd", "Provo Police Department", "UT", "local"),
    Agency("vt-burlington-pd", "Burlington Police Department", "VT", "local"),
    Agency("ga-atlanta-pd", "Atlanta Police Department", "GA", "local"),
)


def change(
    agency_id: str, setting: str, value: Any, *, sign: bool = True, **extra: Any
) -> dict[str, Any]:
    """A policy_change, signed with the test key unless told otherwise."""
    event: dict[str, Any] = {
        "type": "policy_change",
        "change_id": f"chg-{agency_id}-{setting}-{value!r}",
        "ts": "2025-02-01T00:00:00Z",
        "agency_id": agency_id,
        "setting": setting,
        "value": value,
        "actor": {"user_id": "admin-1", "agency_id": agency_id},
        "reason": "configuration",
        "ticket": "CHG-1",
    }
    event.update(extra)
    if sign:
        event["key_id"] = "k1"
        event["signature"] = sign_change(event, SECRET)
    return event


def search(
    requester: str,
    *,
    scope: str = "networks",
    networks: list[str] | None = None,
    reason: str | None = "burglary 459 PC case 25-000123",
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "search_request",
        "search_id": "s-1",
        "ts": "2025-03-01T11:59:00Z",
        "requester": {"agency_id": requester, "user_id": "u-991"},
        "reason": reason,
        "case_number": "25-000123",
        "offense_type": None,
        "search_type": "lookup",
        "query": {"plate": "8ABC123", "from": "2025-03-01T11:58:00Z", "to": "2025-03-01T12:00:00Z"},
        "scope": scope,
        "networks": networks if networks is not None else [],
    }
    event.update(extra)
    return event


def read(owner: str, share_to: list[str], **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "plate_read",
        "read_id": "r-1",
        "ts": "2025-03-01T11:00:00Z",
        "agency_id": owner,
        "camera_id": "cam-17",
        "plate": "8ABC123",
        "plate_state": "CA",
        "confidence": 0.93,
        "location": {"lat": 34.27, "lon": -119.23},
        "hotlist_hit": False,
        "share_to": share_to,
    }
    event.update(extra)
    return event


class RecordingSink:
    """What `streamguard.stream.types.MetricsSink` is told, minus per-decision counts."""

    def __init__(self) -> None:
        self.alerts: list[str] = []
        self.attempts: list[tuple[str, str]] = []
        self.gauges: dict[str, dict[str, int]] = {}

    def observe_decision(self, *args: Any, **kwargs: Any) -> None:
        return None

    def observe_policy_change(self, result: str) -> None:
        return None

    def observe_alert(self, kind: str) -> None:
        self.alerts.append(kind)

    def observe_owner_attempt(self, owner_id: str, kind: str) -> None:
        self.attempts.append((owner_id, kind))

    def set_agency_searches(self, window: str, counts: Any) -> None:
        self.gauges[window] = dict(counts)

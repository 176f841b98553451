"""What tests share and the product does not ship: the pure core's test data (a small registry
spanning the states the law treats apart, a fixed clock and key), a recording metrics sink, and
readers of the records a worker wrote. Running StreamGuard against a broker is
`streamguard.local.testing`; the export tests' samples are tests/unit/exports/samples.py;
fixtures are in the conftest files.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NoReturn, TypeVar

import pytest

from streamguard.core import control
from streamguard.core.keys import Key, parse_keys
from streamguard.core.models import Agency, ChangeDecision, Decision, MalformedDecision
from streamguard.core.policy import PolicyState
from streamguard.core.replay import ReplayLedger
from streamguard.core.signer import SigningKey
from streamguard.core.timeutil import format_ts, parse_ts
from streamguard.local.testing import (
    Collected,
    Deployment,
    TestKeys,
    plate_read,
    policy_change,
    search_request,
    signed,
    wait_for,
)

T = TypeVar("T")
# decide_event at the fixed clock (the `apply` fixture); a Deployment maker (the `deploy` one).
Apply = Callable[..., tuple[PolicyState, Decision]]
Deploy = Callable[..., Deployment]

NOW_TS = "2025-03-01T12:00:00Z"
_NOW = parse_ts(NOW_TS)
assert _NOW is not None
NOW: float = _NOW

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
# One Ed25519 key per agency (`k-<agency_id>`, also for two agencies the registry lacks: tests
# add Tampa, and "zz-nowhere" is the unknown one) and `k-registry`; KEYS is what a deployment's
# KEYS.json would hold of them.
SIGNERS = TestKeys(
    b"test-secret-k1", [*(a.agency_id for a in AGENCIES), "fl-tampa-pd", "zz-nowhere"]
)


class _Keys(Mapping[str, Key]):
    """SIGNERS' public keys as a deployment holds them, following keys derived later (for
    agencies a test adds to the registry)."""

    def __init__(self) -> None:
        self._parsed: dict[str, Key] = {}

    def __getitem__(self, key_id: str) -> Key:
        if key_id not in self._parsed:
            signer = SIGNERS.signers[key_id]
            self._parsed[key_id] = parse_keys({key_id: signer.keys_entry()}, "tests")[key_id]
        return self._parsed[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(SIGNERS.signers)

    def __len__(self) -> int:
        return len(SIGNERS.signers)


KEYS: Mapping[str, Key] = _Keys()
_CHANGES = itertools.count()


def change(
    agency_id: str,
    setting: str,
    value: Any,
    *,
    sign: bool = True,
    signer: SigningKey | None = None,
    key_id: str | None = None,
    ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A policy_change, signed with the owner's test key (or `signer`) unless told otherwise.

    Each call is a new change: its own change_id and a `ts` a millisecond after the last one,
    an hour before NOW (well inside the replay window, in order within a test). `key_id`
    renames the signing key after signing (a key the deployment does not hold).
    """
    n = next(_CHANGES)
    event = policy_change(
        agency_id,
        setting,
        value,
        ts=ts or format_ts(NOW - 3600 + n / 1000),
        change_id=f"chg-{agency_id}-{setting}-{value!r}-{n}",
        reason="configuration",
    )
    event.update(extra)
    if not sign:
        return event
    out = signed(event, signer or SIGNERS.for_agency(agency_id))
    if key_id is not None:
        out["key_id"] = key_id
    return out


def registry_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """An agency record dated a minute before NOW (in order within a test), signed by the
    test registry key, as the agencies topic needs it (docs/contract.md section 2a)."""
    n = next(_CHANGES)
    return signed({**record, "ts": format_ts(NOW - 60 + n / 1000)}, SIGNERS.registry)


def apply_change(
    state: PolicyState, event: Mapping[str, Any], keys: Mapping[str, Key] = KEYS
) -> tuple[PolicyState, ChangeDecision | MalformedDecision]:
    """One policy change decided on its own (nothing decided before it), at the test clock."""
    return control.apply_change(state, event, keys, ReplayLedger(), NOW)


def search(
    requester: str,
    *,
    scope: str = "networks",
    networks: list[str] | None = None,
    reason: str | None = "burglary 459 PC case 25-000123",
    **extra: Any,
) -> dict[str, Any]:
    event = search_request(
        requester,
        scope=scope,
        networks=networks or (),
        reason=reason,
        ts="2025-03-01T11:59:00Z",
        user_id="u-991",
        search_id="s-1",
        query_window=("2025-03-01T11:58:00Z", "2025-03-01T12:00:00Z"),
    )
    event.update(extra)
    return event


def read(owner: str, share_to: list[str], **extra: Any) -> dict[str, Any]:
    event = plate_read(owner, share_to, ts="2025-03-01T11:00:00Z", read_id="r-1")
    event |= {"camera_id": "cam-17", "confidence": 0.93, "location": {"lat": 34.27, "lon": -119.23}}
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

    def observe_decisions(self, *args: Any, **kwargs: Any) -> None:
        return None

    def observe_policy_change(self, result: str) -> None:
        return None

    def observe_alert(self, kind: str) -> None:
        self.alerts.append(kind)

    def observe_owner_attempt(self, owner_id: str, kind: str, n: int = 1) -> None:
        self.attempts.extend([(owner_id, kind)] * n)

    def set_agency_searches(self, window: str, counts: Any) -> None:
        self.gauges[window] = dict(counts)


# --- what is unavailable and what is waited for -----------------------------------------------


def unavailable(what: str, reason: str) -> NoReturn:
    """A test without `what`: a failure under CI (a skipped run there would prove nothing and
    still look green), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI needs {what}: {reason}", pytrace=False)
    pytest.skip(f"without {what}: {reason}")


def poll(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """`wait_for` a truthy `probe()`; a failure naming `what` and the last value at the deadline."""
    value = wait_for(probe, timeout, interval=interval)
    if not value:
        pytest.fail(f"timed out waiting for {what}; last seen: {value!r}", pytrace=False)
    return value


# --- records a worker wrote -------------------------------------------------------------------


def event_id(record: dict[str, Any]) -> Any:
    """The id of the event an input, an output or an audit record is about (None for raw input
    that had none)."""
    return (
        record.get("event_id")
        or record.get("search_id")
        or record.get("read_id")
        or record.get("change_id")
    )


def audited(records: Iterable[tuple[bytes | None, Any]]) -> set[str]:
    """The event ids of audit records."""
    return {v["event_id"] for _, v in records if isinstance(v, dict) and v.get("event_id")}


def by_field(records: Iterable[tuple[bytes | None, Any]], field: str, value: Any) -> list[Any]:
    """The record values whose `field` is `value`."""
    return [v for _, v in records if isinstance(v, dict) and v.get(field) == value]


def decision_ids(got: Collected) -> dict[Any, set[tuple[str, str]]]:
    """(topic, decision id) of every record each event got: a replay must repeat the id."""
    out: dict[Any, set[tuple[str, str]]] = defaultdict(set)
    for topic, records in got.items():
        for _, value in records:
            out[event_id(value)].add((topic, value["decision_id"]))
    return out

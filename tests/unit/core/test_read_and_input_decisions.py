"""Plate reads per recipient, registry upserts, and inputs that are not valid events.

`apply` sends each event through the front door (streamguard.stream.intake) as JSON, then the
engine; tests/unit/stream/test_intake.py tests the front door alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamguard.core.engine import decide_read, normalize_plate
from streamguard.core.models import MalformedDecision, ReadDecision, UpsertDecision
from streamguard.core.policy import PolicyState
from tests.helpers import KEYS, NOW, Apply, apply_change, change, read, registry_record, search

DAY = 86_400.0


def decide(state: PolicyState, event: dict[str, Any], now: float = NOW) -> ReadDecision:
    decision = decide_read(event, state, now)
    assert isinstance(decision, ReadDecision), decision
    return decision


def share(state: PolicyState, owner: str, *recipients: str, **settings: Any) -> PolicyState:
    if recipients:
        state, _ = apply_change(state, change(owner, "share_with", list(recipients)), KEYS)
    for name, value in settings.items():
        state, _ = apply_change(state, change(owner, name, value), KEYS)
    return state


def test_read_shared_with_in_state_recipient(state: PolicyState) -> None:
    """A CA read goes to a CA agency the owner shares with."""
    state = share(state, "ca-ventura-county-so", "ca-oxnard-pd")
    decision = decide(state, read("ca-ventura-county-so", ["ca-oxnard-pd"]))
    assert decision.outcome == "shared" and decision.allowed == ("ca-oxnard-pd",)


def test_read_partial_and_denied_recipients(state: PolicyState) -> None:
    """Recipients are decided one by one: lawful ones get the read, others are listed with codes."""
    state = share(state, "ca-ventura-county-so", "ca-oxnard-pd")
    decision = decide(
        state, read("ca-ventura-county-so", ["ca-oxnard-pd", "tx-houston-pd", "us-ice-ero"])
    )
    assert decision.outcome == "partial"
    assert decision.allowed == ("ca-oxnard-pd",)
    assert {v.agency_id: v.codes for v in decision.denied} == {
        "tx-houston-pd": ("NOT_SHARED", "OUT_OF_STATE_RECIPIENT"),
        "us-ice-ero": ("NOT_SHARED", "FEDERAL_RECIPIENT"),
    }
    assert all(r.agency_id == v.agency_id for v in decision.denied for r in v.reasons)


def test_read_with_only_unlawful_recipients_is_denied(state: PolicyState) -> None:
    """Nothing lawful to share: the read is denied."""
    decision = decide(state, read("ca-ventura-county-so", ["ca-acme-security"]))
    assert decision.outcome == "denied"
    assert decision.codes == ("NOT_SHARED", "PRIVATE_RECIPIENT")


def test_read_without_recipients_stays_with_owner(state: PolicyState) -> None:
    """A read with an empty share_to is shared with nobody and raises no code."""
    decision = decide(state, read("ca-ventura-county-so", []))
    assert decision.outcome == "shared" and decision.allowed == () and decision.codes == ()


def test_read_unknown_owner_and_unknown_recipient(state: PolicyState) -> None:
    """Unknown owners share nothing; unknown recipients receive nothing."""
    assert decide(state, read("zz-ghost", ["tx-houston-pd"])).codes == ("UNKNOWN_OWNER",)
    assert decide(state, read("tx-dallas-pd", ["zz-ghost"])).codes == ("UNKNOWN_REQUESTER",)


def test_read_past_retention_is_not_shared(state: PolicyState) -> None:
    """Carrying a Virginia read older than 21 days to anyone is RETENTION_EXCEEDED."""
    state = share(state, "va-richmond-pd", "va-richmond-pd")
    old = read("va-richmond-pd", ["va-richmond-pd"], ts="2025-01-01T00:00:00Z")
    assert decide(state, old).codes == ("RETENTION_EXCEEDED",)


def test_federal_recipient_needs_federal_sharing(state: PolicyState) -> None:
    """Sharing reads with a federal agency needs both share_with and federal_sharing."""
    state = share(state, "tx-dallas-pd", "us-fbi")
    assert decide(state, read("tx-dallas-pd", ["us-fbi"])).codes == ("NOT_SHARED",)
    state = share(state, "tx-dallas-pd", federal_sharing=True)
    assert decide(state, read("tx-dallas-pd", ["us-fbi"])).outcome == "shared"


@pytest.mark.parametrize(
    "patch",
    [
        {"read_id": None},
        {"plate": None},
        {"plate": ""},
        {"agency_id": 5},
        {"ts": "later"},
        {"share_to": "ca-oxnard-pd"},
        {"share_to": [None]},
        {"confidence": "high"},
        {"confidence": True},
    ],
)
def test_schema_invalid_reads_are_malformed(state: PolicyState, patch: dict[str, Any]) -> None:
    """Missing or ill-typed read fields make the read SCHEMA_INVALID."""
    decision = decide_read({**read("ca-ventura-county-so", []), **patch}, state, NOW)
    assert isinstance(decision, MalformedDecision) and decision.codes == ("SCHEMA_INVALID",)


@pytest.mark.parametrize("event", [[], "text", 42, None, 1.5, True])
def test_non_objects_are_malformed_events(state: PolicyState, apply: Apply, event: object) -> None:
    """JSON that is not an object is MALFORMED_EVENT with no event id."""
    new_state, decision = apply(state, event)
    assert isinstance(decision, MalformedDecision)
    assert decision.codes == ("MALFORMED_EVENT",) and decision.event_id is None
    assert new_state is state


def test_unknown_type_is_schema_invalid(state: PolicyState, apply: Apply) -> None:
    """An object of no known type is SCHEMA_INVALID."""
    _, decision = apply(state, {"type": "telemetry", "x": 1})
    assert decision.codes == ("SCHEMA_INVALID",)
    assert isinstance(decision, MalformedDecision) and decision.kind == "raw"


def test_agency_upsert_changes_later_decisions(state: PolicyState, apply: Apply) -> None:
    """A registry upsert makes an unknown requester known; it is applied in order."""
    event = search("nv-reno-pd", networks=["nv-reno-pd"])
    _, before = apply(state, event)
    # Its own network is no registered owner either: every applicable code is listed.
    assert before.codes == ("UNKNOWN_REQUESTER", "UNKNOWN_OWNER")
    state, upsert = apply(
        state,
        registry_record(
            {"agency_id": "nv-reno-pd", "name": "Reno PD", "state": "nv", "kind": "Local"}
        ),
    )
    assert isinstance(upsert, UpsertDecision) and upsert.outcome == "upserted"
    assert state.agencies["nv-reno-pd"].state == "NV"
    _, after = apply(state, event)
    assert after.outcome == "approved"


def test_agency_moving_state_is_judged_by_its_new_state(state: PolicyState, apply: Apply) -> None:
    """Law is applied at decision time: an agency re-registered out of state loses CA access."""
    state = share(state, "ca-ventura-county-so", "ca-oxnard-pd")
    state, _ = apply(
        state,
        registry_record(
            {
                "type": "agency",
                "agency_id": "ca-oxnard-pd",
                "name": "Oxnard PD",
                "state": "NV",
                "kind": "local",
            }
        ),
    )
    _, decision = apply(state, search("ca-oxnard-pd", networks=["ca-ventura-county-so"]))
    assert decision.codes == ("OUT_OF_STATE_RECIPIENT",)


@pytest.mark.parametrize(
    "record",
    [
        {"type": "agency", "agency_id": "x", "name": "X", "state": "ZZ", "kind": "local"},
        {"type": "agency", "agency_id": "x", "name": "X", "state": "TX", "kind": "militia"},
        {"type": "agency", "agency_id": "", "name": "X", "state": "TX", "kind": "local"},
        {"type": "agency", "agency_id": "x", "name": "X", "state": "TX"},
        {
            "type": "agency",
            "agency_id": "x",
            "name": "X",
            "state": "TX",
            "kind": "local",
            "aliases": 3,
        },
    ],
)
def test_invalid_agency_records_are_schema_invalid(
    state: PolicyState, apply: Apply, record: dict[str, Any]
) -> None:
    """A bad registry record is rejected and the registry is untouched."""
    new_state, decision = apply(state, record)
    assert decision.codes == ("SCHEMA_INVALID",)
    assert new_state is state


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("8abc 123", "8ABC123"), ("ab-12-cd", "AB12CD"), (" x y-z ", "XYZ"), ("ÄB1", "ÄB1")],
)
def test_plates_are_normalised_before_comparison(raw: str, normal: str) -> None:
    """Plates compare upper-cased without spaces and dashes (docs/contract.md section 1)."""
    assert normalize_plate(raw) == normal

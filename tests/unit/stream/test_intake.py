"""The front door: bytes in, a decoded event or the reason it is none out, by one set of rules
for the worker, `evaluate` and the demo (docs/contract.md sections 1 and 2)."""

from __future__ import annotations

from typing import Any

import pytest

from streamguard import serde
from streamguard.core.models import Event
from streamguard.stream.intake import Unreadable, decode, event_kind
from streamguard.stream.outputs import raw_original
from tests.helpers import read, search

AGENCY = {"agency_id": "nv-reno-pd", "name": "Reno PD", "state": "NV", "kind": "local"}


def _unreadable(item: Event | Unreadable) -> Unreadable:
    assert isinstance(item, Unreadable), item
    return item


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "empty"),
        (b"{not json", "not UTF-8 JSON"),
        (b"\xff\xfe garbled", "not UTF-8 JSON"),
        (b"[1, 2]", "not an object"),
        (b'"search_request"', "not an object"),
        (b"null", "not an object"),
    ],
)
@pytest.mark.parametrize("role", [None, "searches", "agencies"])
def test_what_is_no_json_object_is_malformed(raw: bytes, detail: str, role: str | None) -> None:
    """On any topic and in evaluate: MALFORMED_EVENT, no id, kind raw, the bytes kept."""
    item = _unreadable(decode(raw, "v9", role=role, key=b"k"))
    decision = item.decision
    assert decision.codes == ("MALFORMED_EVENT",) and decision.event_id is None
    assert decision.kind == "raw" and decision.policy_version == "v9"
    assert detail in decision.reason.detail
    assert item.original == raw_original(raw)


def test_each_contract_kind_is_decoded_with_its_id() -> None:
    """Without a topic any kind is taken; the id comes from the kind's own field."""
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            search("tx-houston-pd", networks=["tx-houston-pd"], search_id="s-7"),
            "search_request",
            "s-7",
        ),
        ({**read("tx-houston-pd", []), "read_id": "r-7"}, "plate_read", "r-7"),
        ({"type": "policy_change", "change_id": "c-7"}, "policy_change", "c-7"),
        (AGENCY, "agency", "nv-reno-pd"),
        ({"type": "agency", **AGENCY}, "agency", "nv-reno-pd"),
    ]
    for body, kind, event_id in cases:
        item = decode(serde.dumps(body), "v")
        assert item == Event(kind, event_id, body), body


def test_an_event_without_a_readable_id_still_decodes() -> None:
    """A missing or empty id is the engine's SCHEMA_INVALID to report, with the event's kind."""
    item = decode(serde.dumps({"type": "search_request", "search_id": ""}), "v")
    assert isinstance(item, Event) and item.kind == "search_request" and item.event_id is None


@pytest.mark.parametrize(
    "body", [{"type": "telemetry", "x": 1}, {"type": 5, **AGENCY}, {"name": "no id"}]
)
def test_an_object_of_no_known_kind_is_schema_invalid(body: dict[str, Any]) -> None:
    item = _unreadable(decode(serde.dumps(body), "v"))
    assert item.decision.codes == ("SCHEMA_INVALID",) and item.decision.kind == "raw"
    assert item.decision.event_id is None and item.original == body
    assert event_kind(body) == "raw"


@pytest.mark.parametrize(
    ("role", "body", "kind", "event_id"),
    [
        ("searches", {**read("tx-houston-pd", []), "read_id": "r-1"}, "plate_read", None),
        ("reads", {"type": "search_request", "search_id": "s-1"}, "search_request", None),
        ("policy", {"type": "telemetry", "change_id": "c-1"}, "raw", "c-1"),
        ("searches", AGENCY, "agency", None),
    ],
)
def test_an_event_on_another_kinds_topic_is_schema_invalid(
    role: str, body: dict[str, Any], kind: str, event_id: str | None
) -> None:
    """A topic carries one kind; anything else on it is quarantined as what it claims to be,
    with the id the topic's kind would have."""
    item = _unreadable(decode(serde.dumps(body), "v", role=role))
    assert item.decision.codes == ("SCHEMA_INVALID",)
    assert item.decision.kind == kind and item.decision.event_id == event_id
    assert f"on the {role} topic" in item.decision.reason.detail


def test_any_object_on_the_agencies_topic_is_an_agency_record() -> None:
    """The topic says what it carries: a `type` field does not make it something else."""
    body = {"type": "search_request", **AGENCY}
    assert decode(serde.dumps(body), "v", role="agencies") == Event("agency", "nv-reno-pd", body)


def test_an_agency_record_must_match_its_key() -> None:
    """The key of an agency message is its agency_id (after trimming, as the registry reads
    it); a record that is invalid anyway is left to the engine to explain."""
    raw = serde.dumps({**AGENCY, "agency_id": " nv-reno-pd "})
    assert isinstance(decode(raw, "v", role="agencies", key=b"nv-reno-pd"), Event)
    item = _unreadable(decode(serde.dumps(AGENCY), "v", role="agencies", key=b"nv-sparks-pd"))
    assert item.decision.codes == ("SCHEMA_INVALID",) and item.decision.kind == "agency"
    assert item.decision.event_id == "nv-reno-pd"
    assert "differs from agency_id" in item.decision.reason.detail
    invalid = {**AGENCY, "state": "ZZ"}
    item2 = decode(serde.dumps(invalid), "v", role="agencies", key=b"nv-sparks-pd")
    assert item2 == Event("agency", "nv-reno-pd", invalid)


def test_a_tombstone_deletes_the_agency_its_key_names() -> None:
    item = decode(None, "v", role="agencies", key=b"nv-reno-pd")
    assert item == Event("agency", "nv-reno-pd", {"agency_id": "nv-reno-pd"}, deleted=True)


@pytest.mark.parametrize("key", [None, b""])
def test_a_tombstone_without_a_key_is_schema_invalid(key: bytes | None) -> None:
    item = _unreadable(decode(None, "v", role="agencies", key=key))
    assert item.decision.codes == ("SCHEMA_INVALID",) and item.decision.kind == "agency"
    assert item.original is None and item.decision.event_id is None


def test_a_null_value_elsewhere_is_an_empty_message() -> None:
    """Only the agencies topic has tombstones."""
    item = _unreadable(decode(None, "v", role="searches", key=b"tx-houston-pd"))
    assert item.decision.codes == ("MALFORMED_EVENT",) and "empty" in item.decision.reason.detail

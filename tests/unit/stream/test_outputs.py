"""Output records, routing and deterministic ids of worker decisions."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from streamguard.core.models import (
    ChangeDecision,
    MalformedDecision,
    NetworkVerdict,
    ReadDecision,
    Reason,
    SearchDecision,
    UpsertDecision,
)
from streamguard.stream.outputs import (
    LIST_LIMIT,
    MAX_MESSAGE_BYTES,
    NAMESPACE,
    alert_id,
    alert_record,
    audit_fields,
    bounded,
    decision_id,
    grouped_reasons,
    raw_decision_id,
    raw_original,
    redact_plate,
    route,
)

AT = "2025-02-10T18:03:12Z"
SEARCH: dict[str, Any] = {
    "type": "search_request",
    "search_id": "s-1",
    "ts": "2025-02-10T18:03:11Z",
    "requester": {"agency_id": "ca-oxnard-pd", "user_id": "u-1"},
    "reason": "stolen vehicle 8ABC-123",
    "case_number": "25-1",
    "offense_type": None,
    "query": {"plate": "8ABC123", "from": None, "to": None},
    "scope": "statewide",
    "networks": [],
    "extra": "kept",
}
READ: dict[str, Any] = {
    "type": "plate_read",
    "read_id": "r-1",
    "ts": "2025-02-10T18:03:11Z",
    "agency_id": "ca-ventura-county-so",
    "plate": "8ABC123",
    "share_to": ["a", "b"],
}
DENY = Reason("NOT_SHARED", "cite", "not shared", "ca-b")


def _search(outcome: str, verdicts: tuple[NetworkVerdict, ...]) -> SearchDecision:
    return SearchDecision("s-1", outcome, (), verdicts, "v1/0")


def test_decision_ids_are_deterministic() -> None:
    """The same event (or Kafka position) always gets the same id; kinds do not collide."""
    assert decision_id("search_request", "x") == decision_id("search_request", "x")
    assert decision_id("search_request", "x") != decision_id("plate_read", "x")
    assert raw_decision_id("t", 0, 5) == raw_decision_id("t", 0, 5)
    assert raw_decision_id("t", 0, 5) != raw_decision_id("t", 1, 5)


def test_ids_are_the_uuid5_of_their_name() -> None:
    """Ids are exactly uuid5(NAMESPACE, name) as earlier versions wrote them (replays of old
    events must get the same ids), whatever characters the name holds."""
    for event_id in ("x", "", "s-1", "ünïcødé €", "😀" * 40, "a:b:c", "x" * 500):
        assert decision_id("search_request", event_id) == str(
            uuid.uuid5(NAMESPACE, f"search_request:{event_id}")
        )
    variants = set()
    for n in range(200):  # every variant digit (8, 9, a, b) comes up
        expected = str(uuid.uuid5(NAMESPACE, f"plate_read:r-{n}"))
        assert decision_id("plate_read", f"r-{n}") == expected
        variants.add(expected[19])
    assert variants == set("89ab")
    assert raw_decision_id("t", 3, 17) == str(uuid.uuid5(NAMESPACE, "raw:t:3:17"))
    assert alert_id("search_rate", "ca-a", AT) == str(
        uuid.uuid5(NAMESPACE, f"alert:search_rate:ca-a:{AT}")
    )


def test_approved_search_goes_only_to_approved() -> None:
    """An approved search is the input plus decision fields, on the approved topic only."""
    decision = _search("approved", (NetworkVerdict("ca-oxnard-pd"),))
    [out] = route(SEARCH, decision, "d1", AT, fallback_key="k")
    assert (out.role, out.key) == ("approved", "ca-oxnard-pd")
    expected = {
        **SEARCH,
        "decision_id": "d1",
        "decided_at": AT,
        "allowed_networks": ["ca-oxnard-pd"],
        "denied_networks": [],
        "policy_version": "v1/0",
    }
    assert out.value == expected


def test_partial_search_goes_to_both_with_reasons() -> None:
    """A partial search lists allowed networks for consumers and reasons in quarantine."""
    decision = _search("partial", (NetworkVerdict("ca-a"), NetworkVerdict("ca-b", (DENY,))))
    approved, quarantine = route(SEARCH, decision, "d1", AT, fallback_key="k")
    assert approved.value["allowed_networks"] == ["ca-a"]
    assert approved.value["denied_networks"] == [{"agency_id": "ca-b", "codes": ["NOT_SHARED"]}]
    assert (quarantine.role, quarantine.key) == ("quarantine", "s-1")
    assert quarantine.value == {
        "event_id": "s-1",
        "kind": "search_request",
        # The v1.1 grouped form: one entry per code, citation and detail.
        "reasons": [
            {
                "code": "NOT_SHARED",
                "citation": "cite",
                "detail": "not shared",
                "agency_ids": ["ca-b"],
            }
        ],
        "decision_id": "d1",
        "decided_at": AT,
        "policy_version": "v1/0",
        "original": SEARCH,
    }


def test_denied_search_goes_to_quarantine_only() -> None:
    """A denied search never reaches the approved topic."""
    decision = _search("denied", (NetworkVerdict("ca-b", (DENY,)),))
    assert [o.role for o in route(SEARCH, decision, "d", AT, fallback_key="k")] == ["quarantine"]


def test_read_routing() -> None:
    """Reads: shared to reads.shared, partial to both, denied to quarantine only."""
    ok, bad = NetworkVerdict("a"), NetworkVerdict("b", (DENY,))
    shared = route(READ, ReadDecision("r-1", "shared", (), (ok,), "v"), "d", AT, fallback_key="k")
    assert [(o.role, o.key) for o in shared] == [("shared", "ca-ventura-county-so")]
    assert shared[0].value["recipients"] == ["a"]
    partial = route(
        READ, ReadDecision("r-1", "partial", (), (ok, bad), "v"), "d", AT, fallback_key="k"
    )
    assert [o.role for o in partial] == ["shared", "quarantine"]
    assert partial[0].value["denied_recipients"] == [{"agency_id": "b", "codes": ["NOT_SHARED"]}]
    denied = route(READ, ReadDecision("r-1", "denied", (), (bad,), "v"), "d", AT, fallback_key="k")
    assert [o.role for o in denied] == ["quarantine"]


def test_policy_changes_and_upserts() -> None:
    """Applied changes and upserts send nothing; a rejected change is quarantined."""
    applied = ChangeDecision("c-1", "o", "national_lookup", applied=True)
    assert route({}, applied, "d", AT, fallback_key="k") == []
    assert route({}, UpsertDecision("o"), "d", AT, fallback_key="k") == []
    reason = Reason("UNSIGNED_CHANGE", "cite", "no signature", "o")
    rejected = ChangeDecision("c-1", "o", "national_lookup", applied=False, reasons=(reason,))
    [out] = route({"change_id": "c-1"}, rejected, "d", AT, fallback_key="k")
    assert (out.role, out.value["kind"]) == ("quarantine", "policy_change")
    assert [r["code"] for r in out.value["reasons"]] == ["UNSIGNED_CHANGE"]


def test_malformed_keeps_raw_bytes() -> None:
    """Unreadable input is quarantined with its bytes in base64, keyed by the fallback key."""
    raw = b"\xff not json"
    reason = Reason("MALFORMED_EVENT", "cite", "not JSON")
    [out] = route(
        raw_original(raw), MalformedDecision(None, "raw", reason), "d", AT, fallback_key="d"
    )
    assert out.key == "d"
    assert raw == base64.b64decode(out.value["original"]["raw_base64"])
    assert (out.value["event_id"], out.value["kind"]) == (None, "raw")


def test_alert_ids_are_stable_per_window() -> None:
    """One alert id per (kind, agency, window): a replayed crossing repeats the same id."""
    a = alert_record("k", "ag", "2025-02-10T18:00:00Z", "2025-02-10T19:00:00Z", 5, 4, "d")
    b = alert_record("k", "ag", "2025-02-10T18:00:00Z", "2025-02-10T19:00:00Z", 6, 4, "d")
    c = alert_record("k", "ag", "2025-02-10T19:00:00Z", "2025-02-10T20:00:00Z", 5, 4, "d")
    assert a["alert_id"] == b["alert_id"] != c["alert_id"]
    assert {
        "alert_id",
        "kind",
        "agency_id",
        "window_start",
        "window_end",
        "value",
        "threshold",
        "detail",
    } == set(a)


def test_audit_fields_never_hold_the_plate() -> None:
    """Audit fields carry the plate hash and a redacted purpose, never the plate itself."""
    decision = _search("approved", (NetworkVerdict("ca-oxnard-pd"),))
    fields = audit_fields(SEARCH, decision, "d", AT, "f" * 64)
    text = repr(fields).upper().replace("-", "").replace(" ", "")
    assert "8ABC123" not in text
    assert fields["reason"] == "stolen vehicle [plate]"
    who = (fields["requester"], fields["user_id"], fields["case_number"])
    assert who == ("ca-oxnard-pd", "u-1", "25-1")


def test_audit_fields_of_malformed_input_are_minimal() -> None:
    """Invalid events are audited by id, kind, outcome and codes only."""
    reason = Reason("SCHEMA_INVALID", "cite", "bad")
    fields = audit_fields(
        {"plate": "X"}, MalformedDecision("e", "plate_read", reason), "d", AT, None
    )
    assert {
        "event_id",
        "kind",
        "outcome",
        "codes",
        "policy_version",
        "decided_at",
        "decision_id",
    } == set(fields)


def test_redact_plate_spellings() -> None:
    """Any spacing, dashes or case of the plate is redacted; other text is untouched."""
    assert redact_plate("car 8abc 123 seen", "8ABC123") == "car [plate] seen"
    assert redact_plate("no plate here", "8ABC123") == "no plate here"
    assert redact_plate("text", None) == "text"


def _not_shared(owner: str) -> Reason:
    return Reason("NOT_SHARED", "cite", f"{owner} does not share its network", owner)


def _expand(reasons: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    """Grouped entries back into one (code, citation, detail, agency) per network."""
    out = []
    for r in reasons:
        for agency_id in r.get("agency_ids", [r.get("agency_id")]):
            detail = r["detail"].replace("{agency_id}", agency_id or "")
            out.append((r["code"], r["citation"], detail, agency_id))
    return out


def test_grouped_reasons_expand_back_to_the_per_network_reasons() -> None:
    """One entry per code, citation and detail, naming the networks; nothing lost."""
    late = Reason("RETENTION_EXCEEDED", "law", "older than ca-b may keep", "ca-b")
    denied = (
        NetworkVerdict("ca-b", (_not_shared("ca-b"), late)),
        NetworkVerdict("ca-c", (_not_shared("ca-c"),)),
    )
    top = (Reason("MISSING_PURPOSE", "law", "no purpose"),)
    reasons = grouped_reasons(top, denied)
    assert reasons == [
        {"code": "MISSING_PURPOSE", "citation": "law", "detail": "no purpose"},
        {
            "code": "NOT_SHARED",
            "citation": "cite",
            "detail": "{agency_id} does not share its network",
            "agency_ids": ["ca-b", "ca-c"],
        },
        {
            "code": "RETENTION_EXCEEDED",
            "citation": "law",
            "detail": "older than {agency_id} may keep",
            "agency_ids": ["ca-b"],
        },
    ]
    per_network = [(r.code, r.citation, r.detail, r.agency_id) for r in top] + [
        (r.code, r.citation, r.detail, r.agency_id) for v in denied for r in v.reasons
    ]
    assert sorted(_expand(reasons), key=str) == sorted(per_network, key=str)


def _wide(n: int) -> SearchDecision:
    verdicts = tuple(
        NetworkVerdict(f"tx-agency-{i:05d}", () if i % 2 else (_not_shared(f"tx-agency-{i:05d}"),))
        for i in range(n)
    )
    return SearchDecision("s-1", "partial", (), verdicts, "v1/0")


def test_long_denied_lists_are_bounded_and_the_audit_keeps_counts() -> None:
    """Beyond LIST_LIMIT networks, denied_networks keeps its first entries and says how many it
    leaves out; the audit record has counts per code instead of the id lists."""
    decision = _wide(1_000)
    approved, quarantine = route(SEARCH, decision, "d1", AT, fallback_key="k")
    assert len(approved.value["allowed_networks"]) == 500
    assert len(approved.value["denied_networks"]) == LIST_LIMIT
    assert approved.value["denied_networks_omitted"] == 500 - LIST_LIMIT
    [entry] = quarantine.value["reasons"]
    assert len(entry["agency_ids"]) == 500
    fields = audit_fields(SEARCH, decision, "d1", AT, None)
    assert "allowed" not in fields and "denied" not in fields
    assert (fields["allowed_count"], fields["denied_count"]) == (500, 500)
    assert fields["denied_codes"] == {"NOT_SHARED": 500}
    small = audit_fields(SEARCH, _wide(4), "d1", AT, None)
    assert (small["allowed"], small["denied"]) == (
        ["tx-agency-00001", "tx-agency-00003"],
        ["tx-agency-00000", "tx-agency-00002"],
    )


def test_a_decision_over_the_message_limit_is_split_in_order() -> None:
    """At 20,000 networks the records are cut into parts that each fit, say which part of how
    many they are, and together hold every network once, in decision order."""
    decision = _wide(20_000)
    limit = 100_000  # the same rule as at MAX_MESSAGE_BYTES, with smaller parts
    outs = route(SEARCH, decision, "d1", AT, fallback_key="k", max_bytes=limit)
    approved = [o for o in outs if o.role == "approved"]
    quarantined = [o for o in outs if o.role == "quarantine"]
    assert len(approved) > 1 and len(quarantined) > 1
    import orjson

    for parts in (approved, quarantined):
        assert [(o.value["part"], o.value["parts"]) for o in parts] == [
            (n, len(parts)) for n in range(1, len(parts) + 1)
        ]
        assert all(len(orjson.dumps(o.value)) <= limit for o in parts)
        assert all(o.value["decision_id"] == "d1" and o.key == parts[0].key for o in parts)
    allowed = [a for o in approved for a in o.value["allowed_networks"]]
    assert allowed == [f"tx-agency-{i:05d}" for i in range(1, 20_000, 2)]
    denied = [a for o in quarantined for r in o.value["reasons"] for a in r["agency_ids"]]
    assert denied == [f"tx-agency-{i:05d}" for i in range(0, 20_000, 2)]
    again = route(SEARCH, decision, "d1", AT, fallback_key="k", max_bytes=limit)
    assert [o.value for o in again] == [o.value for o in outs]


def test_at_the_broker_limit_a_denial_of_20000_networks_is_split_and_a_smaller_one_is_not() -> None:
    """At the default limit, 20,000 networks with long ids denied make a quarantine record of
    over 1 MB: it is written in parts that fit; with short ids the record fits whole."""
    import orjson

    names = [f"tx-{i:05d}-a-county-sheriffs-office-of-a-long-name" for i in range(20_000)]
    long_ids = tuple(NetworkVerdict(name, (_not_shared(name),)) for name in names)
    parts = route(
        SEARCH, SearchDecision("s-1", "denied", (), long_ids, "v1/0"), "d1", AT, fallback_key="k"
    )
    assert len(parts) == 2 and all(o.role == "quarantine" for o in parts)
    assert all(len(orjson.dumps(o.value)) <= MAX_MESSAGE_BYTES for o in parts)
    assert [a for o in parts for r in o.value["reasons"] for a in r["agency_ids"]] == names
    outs = route(SEARCH, _wide(20_000), "d1", AT, fallback_key="k")
    assert [o.role for o in outs] == ["approved", "quarantine"]
    assert all("part" not in o.value for o in outs)
    assert bounded(outs[0], MAX_MESSAGE_BYTES) == [outs[0]]


def test_an_encoded_audit_record_is_the_chain_record_with_its_hash() -> None:
    """The audit record written with its hash spliced in is the record `build_record` makes."""
    from streamguard import serde
    from streamguard.stream.audit import BatchChains
    from streamguard.trail.chain import build_record, genesis, verify

    fields = audit_fields(SEARCH, _search("approved", (NetworkVerdict("ca-a"),)), "d1", AT, "ab")
    chains = BatchChains({})
    _, first = chains.append("searches", 3, fields)
    _, second = chains.append("searches", 3, {**fields, "decision_id": "d2"})
    expected, head = build_record(genesis("searches-3"), fields)
    assert serde.loads(first) == expected
    assert serde.loads(second) == build_record(head, {**fields, "decision_id": "d2"})[0]
    assert verify([serde.loads(first), serde.loads(second)]) is None

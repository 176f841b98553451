"""No input stops `streamguard evaluate` or the worker's batch processor: property-based fuzzing
of the whole intake (docs/contract.md, sections 1 and 2).

Events are built from contract events with some of their fields replaced by JSON of any type, or
removed, so the fuzzer spends its time on the edges of the schema rather than on bytes that are
not JSON at all (those are fuzzed too). The properties: every line of `evaluate` gives exactly
one line, every message of a batch gives exactly one audit record, and no decision is the
worker's DECISION_ERROR, which would mean the engine raised on the input instead of judging it.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamguard import serde
from streamguard.core import codes
from streamguard.core.policy import PolicyState
from streamguard.core.statutes import load_statutes
from streamguard.local.testing import plate_read, policy_change, search_request, signed
from streamguard.settings import WorkerSettings
from streamguard.stream.evaluate import evaluate_lines
from streamguard.stream.processor import DECISION_ERROR, BatchProcessor
from streamguard.stream.tables import build_state
from streamguard.stream.types import InMessage
from tests.helpers import AGENCIES, KEYS, NOW, NOW_TS, SIGNERS, RecordingSink, registry_record

KNOWN_CODES = frozenset(
    (*codes.SEARCH_CODES, *codes.NETWORK_CODES, *codes.CHANGE_CODES, *codes.INPUT_CODES)
)
OUTCOMES = frozenset(
    ("approved", "partial", "denied", "shared", "applied", "rejected", "malformed", "upserted")
)
STATUTES = load_statutes()

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            NOW_TS,
            "2025-03-01T12:10:00Z",  # ten minutes ahead of the clock
            "2025-02-01T00:00:00Z",  # past every short retention limit
            "9999-12-31T23:59:59Z",
            "",
            "n/a",
            "national",
            "ca-oxnard-pd",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
AGENCY_IDS = st.sampled_from([a.agency_id for a in AGENCIES] + ["zz-unknown"])


def _templates() -> list[dict[str, Any]]:
    """One valid event of each kind, touching the rules with the most branches."""
    anchor = search_request(
        "tx-houston-pd",
        networks=["ca-ventura-county-so", "va-richmond-pd", "nh-concord-pd"],
        reason="had an abortion, search for female",
        ts=NOW_TS,
        search_id="s-1",
        query_window=("2025-02-20T00:00:00Z", NOW_TS),
    )
    national = search_request(
        "ca-oxnard-pd", scope="national", ts=NOW_TS, search_id="s-2", case_number="n/a"
    )
    read = plate_read("nh-concord-pd", ["nh-concord-pd", "ca-oxnard-pd"], ts=NOW_TS, read_id="r")
    read["hotlist_hit"] = True
    change = signed(
        policy_change("va-richmond-pd", "retention_days", 7, ts=NOW_TS, change_id="c-1"),
        SIGNERS.for_agency("va-richmond-pd"),
    )
    agency = registry_record(
        {"agency_id": "nv-reno-pd", "name": "Reno PD", "state": "NV", "kind": "local"}
    )
    return [anchor, national, read, change, agency]


TEMPLATES = _templates()


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of nested objects in `value`."""
    found: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            found.append((*prefix, key))
            found.extend(_paths(inner, (*prefix, key)))
    return found


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    """A contract event with some fields replaced by any JSON, or removed."""
    event = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for path in draw(st.lists(st.sampled_from(_paths(event)), max_size=4, unique=True)):
        node: Any = event
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # a parent was replaced already
        if draw(st.booleans()):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(JSON | AGENCY_IDS)
    return event


LINES = st.one_of(
    near_events().map(serde.dumps),
    near_events().map(serde.dumps),
    JSON.map(serde.dumps),
    st.binary(max_size=40),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(LINES, min_size=1, max_size=8))
def test_evaluate_gives_every_line_a_line(lines: list[bytes]) -> None:
    state = PolicyState.create(STATUTES, AGENCIES)
    out = list(evaluate_lines(lines, state, KEYS, NOW))
    assert len(out) == len(lines)
    for line in out:
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        decision = serde.loads(line)
        assert decision["outcome"] in OUTCOMES
        assert set(decision["codes"]) <= KNOWN_CODES


ROLES = ("searches", "reads", "policy", "agencies")
_TOPIC_OF = {
    "search_request": "searches",
    "plate_read": "reads",
    "policy_change": "policy",
    "agency": "agencies",
}
KEYS_ON_WIRE = st.none() | st.binary(max_size=8) | AGENCY_IDS.map(str.encode)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None]:
    """(topic role, key, value): mostly an event on its own topic, so that it reaches the
    engine; sometimes any bytes, a null value, or an event on another topic."""
    key = draw(KEYS_ON_WIRE)
    if draw(st.integers(0, 9)) < 7:
        event = draw(near_events())
        kind = event.get("type", "agency")
        role = _TOPIC_OF.get(kind if isinstance(kind, str) else "", "agencies")
        if role == "agencies" and draw(st.booleans()):
            agency_id = event.get("agency_id")
            key = agency_id.encode() if isinstance(agency_id, str) else key
        return role, key, serde.dumps(event)
    return draw(st.sampled_from(ROLES)), key, draw(st.none() | LINES)


@FUZZ
@given(st.lists(messages(), min_size=1, max_size=8))
def test_the_batch_processor_decides_every_message(
    messages: list[tuple[str, bytes | None, bytes | None]],
) -> None:
    proc = BatchProcessor(
        WorkerSettings(rate_limit_per_minute=2),
        build_state(STATUTES, AGENCIES, (), (), 0),
        KEYS,
        b"salt-salt-salt-salt",
        RecordingSink(),
        lambda: NOW,
    )
    batch = [
        InMessage(role, f"t.{role}", 0, offset, key, value)
        for offset, (role, key, value) in enumerate(messages)
    ]
    result = proc.process(batch, now=NOW, counters={}, heads={})
    audited = [serde.loads(record) for _, record in result.audit]
    assert len(audited) == len(batch)
    for record in audited:
        assert DECISION_ERROR not in record["codes"], record
        assert set(record["codes"]) <= KNOWN_CODES
    for message in result.messages:
        serde.dumps(message.value)  # every output can be written
